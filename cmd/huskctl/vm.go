//go:build !husk_novmm

package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/vmm"
	"github.com/huskrt/husk/vmm/cli"
)

// runVM runs a VM with husk's built-in VMM, for debugging by hand:
//
//	huskctl vm run --kernel vmlinuz --initrd initrd --append "console=ttyS0" --disk disk.img
func runVM(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		fmt.Fprintln(os.Stderr, "usage: huskctl vm run --kernel PATH [flags] (huskctl vm run -h lists them)")
		if len(args) > 0 && isHelp(args[0]) {
			return nil
		}
		return errors.New("want the run subcommand")
	}
	reason, err := cli.Run(ctx, args[1:], os.Stdout, os.Stderr, logging.L(ctx))
	if err != nil {
		return err
	}
	if reason != vmm.ExitPowerOff {
		return fmt.Errorf("the VM stopped: %v", reason)
	}
	return nil
}
