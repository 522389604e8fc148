// Command husk-vmm-test runs one VM with husk's VMM and exits with its
// outcome (0 power-off, 2 reboot, 3 stopped, 1 failure). It is `huskctl vm
// run` without the rest of huskctl: built with CGO_ENABLED=0 it is a small
// static binary, which is what the nested-KVM harness (test/nested) puts in
// its outer initrd. HUSK_LOG_LEVEL=debug logs what the guest probes.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/huskrt/husk/vmm/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelInfo
	if os.Getenv("HUSK_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	reason, err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "husk-vmm-test: %v\n", err)
	}
	os.Exit(cli.ExitCode(reason, err))
}
