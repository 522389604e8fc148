package vmm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/machine"
)

// probeLoops is how many times the probe guest's loop runs: about 2*n
// instructions, a tenth of a millisecond on hardware-assisted KVM.
const probeLoops = 100_000

// probeGuest counts ecx down from probeLoops and leaves through port 0xf4:
//
//	mov ecx, 100000
//	loop: dec ecx
//	jnz loop
//	out 0xf4, al
var probeGuest = []byte{
	0xb9, 0xa0, 0x86, 0x01, 0x00, // mov ecx,0x186a0
	0xff, 0xc9, // dec ecx
	0x75, 0xfc, // jnz -4
	0xe6, 0xf4, // out 0xf4,al
}

const (
	probeEntry = 0x10000
	probeDone  = 0xf4
)

// SlowInstruction is the time per guest instruction above which a KVM is
// slow: hardware virtualisation runs a simple loop at well under a
// nanosecond an instruction; nested KVM on an emulated CPU (QEMU TCG with
// SVM, the test harness) at about 300 ns, and boots Linux in seconds; an
// emulating KVM seen on some hosts at about 400 ns, and cannot boot Linux
// at all (it lacks instructions a kernel uses, which a loop does not show).
const SlowInstruction = 20 * time.Nanosecond

// ProbeSpeed runs a tiny guest on /dev/kvm and returns the time per guest
// instruction: an error wrapping kvm.ErrUnavailable when there is no KVM,
// context.DeadlineExceeded when the guest has not finished in 10 s.
func ProbeSpeed(ctx context.Context) (time.Duration, error) {
	m, err := machine.New(machine.Config{MemorySize: 1 << 20, VCPUs: 1})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	if err := m.Memory().WriteAt(probeGuest, probeEntry); err != nil {
		return 0, err
	}
	if err := m.BootLongMode(probeEntry); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	err = m.Run(ctx, func(cpu int, e kvm.Exit) error {
		if e.Reason == kvm.ExitIO && e.Addr == probeDone {
			return machine.ErrPowerOff
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil && !errors.Is(err, machine.ErrPowerOff) {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%d guest instructions took over 10 s: %w", 2*probeLoops, ctx.Err())
		}
		return 0, err
	}
	return elapsed / (2 * probeLoops), nil
}
