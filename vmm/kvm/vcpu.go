package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// VCPU is one virtual CPU. Run must be called from a single OS thread (the
// caller locks its goroutine to it); the register setters are for before
// the first Run. RequestExit may be called from any goroutine.
type VCPU struct {
	id  int
	fd  int
	run []byte // the kvm_run mapping, shared with the kernel
}

// ID returns the vCPU's id, which is also its initial APIC id.
func (c *VCPU) ID() int { return c.id }

// Regs returns the general-purpose registers.
func (c *VCPU) Regs() (Regs, error) {
	var r Regs
	if _, err := ioctlPtr(c.fd, kvmGetRegs, &r); err != nil {
		return r, fmt.Errorf("vCPU %d: KVM_GET_REGS: %w", c.id, err)
	}
	return r, nil
}

// SetRegs sets the general-purpose registers.
func (c *VCPU) SetRegs(r *Regs) error {
	if _, err := ioctlPtr(c.fd, kvmSetRegs, r); err != nil {
		return fmt.Errorf("vCPU %d: KVM_SET_REGS: %w", c.id, err)
	}
	return nil
}

// Sregs returns the system registers.
func (c *VCPU) Sregs() (Sregs, error) {
	var s Sregs
	if _, err := ioctlPtr(c.fd, kvmGetSregs, &s); err != nil {
		return s, fmt.Errorf("vCPU %d: KVM_GET_SREGS: %w", c.id, err)
	}
	return s, nil
}

// SetSregs sets the system registers.
func (c *VCPU) SetSregs(s *Sregs) error {
	if _, err := ioctlPtr(c.fd, kvmSetSregs, s); err != nil {
		return fmt.Errorf("vCPU %d: KVM_SET_SREGS: %w", c.id, err)
	}
	return nil
}

// SetFPU sets the x87 and SSE state.
func (c *VCPU) SetFPU(f *FPU) error {
	if _, err := ioctlPtr(c.fd, kvmSetFPU, f); err != nil {
		return fmt.Errorf("vCPU %d: KVM_SET_FPU: %w", c.id, err)
	}
	return nil
}

// SetCPUID sets what CPUID returns in the guest.
func (c *VCPU) SetCPUID(entries []CPUIDEntry) error {
	if len(entries) > maxCPUIDEntries {
		return fmt.Errorf("vCPU %d: %d CPUID entries, at most %d", c.id, len(entries), maxCPUIDEntries)
	}
	k := &cpuid2{nent: uint32(len(entries))}
	copy(k.entries[:], entries)
	if _, err := ioctlPtr(c.fd, kvmSetCPUID2, k); err != nil {
		return fmt.Errorf("vCPU %d: KVM_SET_CPUID2: %w", c.id, err)
	}
	return nil
}

// ErrMSRRefused reports an MSR KVM would not set.
var ErrMSRRefused = errors.New("KVM refused an MSR")

// SetMSRs sets model-specific registers. KVM sets them in order and stops
// at the first it refuses, which the error names.
func (c *VCPU) SetMSRs(entries []MSREntry) error {
	if len(entries) > maxMSRs {
		return fmt.Errorf("vCPU %d: %d MSRs, at most %d", c.id, len(entries), maxMSRs)
	}
	k := &msrs{nmsrs: uint32(len(entries))}
	copy(k.entries[:], entries)
	n, err := ioctlPtr(c.fd, kvmSetMSRs, k)
	if err != nil {
		return fmt.Errorf("vCPU %d: KVM_SET_MSRS: %w", c.id, err)
	}
	if int(n) != len(entries) {
		return fmt.Errorf("vCPU %d: %w: %#x (set %d of %d)", c.id, ErrMSRRefused, entries[n].Index, n, len(entries))
	}
	return nil
}

// Run enters the guest until it exits to userspace and returns the exit.
// Exits the VMM must act on (I/O, MMIO, HLT without an in-kernel irqchip,
// an interrupted run, an AP woken by SIPI) come back as an Exit; the ones that end the vCPU
// come back as errors: ErrShutdown, *InternalError, *FailEntryError,
// *UnexpectedExitError.
//
// The Exit's Data aliases the kvm_run page: for a guest read (IN, MMIO
// read), fill it before the next Run, which completes the read.
func (c *VCPU) Run() (Exit, error) {
	if c.fd < 0 {
		return Exit{}, ErrClosed
	}
	if _, err := ioctl(c.fd, kvmRun, 0); err != nil {
		if errors.Is(err, unix.EINTR) {
			// A signal, or RequestExit's immediate exit.
			return Exit{Reason: ExitIntr}, nil
		}
		if errors.Is(err, unix.EAGAIN) {
			// An application processor waiting for INIT/SIPI (mp_state
			// UNINITIALIZED) was woken by one: KVM asks to be called again
			// to enter the guest.
			return Exit{Reason: ExitIntr}, nil
		}
		return Exit{}, fmt.Errorf("vCPU %d: KVM_RUN: %w", c.id, err)
	}
	return c.decodeExit()
}

// Close unmaps kvm_run and closes the vCPU.
func (c *VCPU) Close() error {
	if c.run != nil {
		unix.Munmap(c.run)
		c.run = nil
	}
	return closeFD(&c.fd)
}
