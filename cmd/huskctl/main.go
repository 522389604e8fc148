// Command huskctl is husk's operator and developer tool: it checks and prints
// configuration and runs the private development containerd used by the tests
// and the demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one huskctl subcommand. Each lives in its own file and adds
// itself to commands from main's table below, never from init().
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"check":   {"say what this host can run (the VM handler's needs) and why not", runCheck},
		"config":  {"print or check husk's effective configuration", runConfig},
		"dev":     {"development bench: private containerd, test images", runDev},
		"guest":   {"build the VM guest image (kernel, initrd with husk-agent)", runGuest},
		"metrics": {"print a sandbox shim's Prometheus metrics (or pprof pages)", runMetrics},
		"policy":  {"test a hook module on an event; build a Go policy into one", runPolicy},
		"vm":      {"run a VM with husk's VMM, for debugging", runVM},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := commands()
	if len(os.Args) < 2 {
		usage(cmds)
		os.Exit(2)
	}
	name := os.Args[1]
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "huskctl: unknown command %q\n", name)
		usage(cmds)
		os.Exit(2)
	}
	ctx = withLogger(ctx)
	if err := c.run(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "huskctl %s: %v\n", name, err)
		os.Exit(1)
	}
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: huskctl <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, cmds[n].summary)
	}
}
