package nested

import (
	"context"
	"fmt"
	"io"
	"os/exec"
)

// OuterCPU is QEMU's CPU model for the outer guest: TCG's everything-it-
// can-emulate CPU with AMD's SVM, which kvm-amd in the outer guest turns
// into a /dev/kvm with nested paging.
const OuterCPU = "max,+svm"

// QEMUArgs returns the command line that boots kernel with initrd in TCG,
// its serial console on stdout, and exits when the guest powers off.
func QEMUArgs(kernel, initrd, appendLine string, memMiB int) []string {
	return []string{
		"-accel", "tcg", "-cpu", OuterCPU, "-m", fmt.Sprint(memMiB), "-smp", "1",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", appendLine,
	}
}

// RunQEMU runs QEMU with args, copying its console to out, until it exits
// or ctx is done (then it is killed).
func RunQEMU(ctx context.Context, qemu string, args []string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = nil
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("qemu: %w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}
