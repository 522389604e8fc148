package machine

import (
	"sync/atomic"

	"github.com/huskrt/husk/vmm/kvm"
)

// Exits counts the vCPUs' returns from KVM_RUN by kind, summed over the
// vCPUs.
type Exits struct {
	IO   uint64 // port I/O, handed to the ExitHandler
	MMIO uint64 // MMIO, handed to the ExitHandler
	// HLT exits never happen with the in-kernel irqchip (the kernel
	// halts the vCPU); one that does ends the run.
	HLT uint64
	// Interrupted: a kick, a stray signal (EINTR) or an AP woken by
	// INIT/SIPI (EAGAIN); the loop enters the guest again.
	Interrupted uint64
	// Other: every other return, each of which ends its vCPU (a triple
	// fault, a KVM internal error, a failed entry, an exit the VMM never
	// asked for, a failing KVM_RUN).
	Other uint64
}

// exitCounts is one vCPU's Exits: written by the vCPU's thread, read by
// Machine.Exits from anywhere.
type exitCounts struct {
	io, mmio, hlt, interrupted, other atomic.Uint64
}

// count records one return from KVM_RUN: the exit, or the error Run gave
// instead.
func (c *exitCounts) count(e kvm.Exit, err error) {
	switch {
	case err != nil:
		c.other.Add(1)
	case e.Reason == kvm.ExitIO:
		c.io.Add(1)
	case e.Reason == kvm.ExitMMIO:
		c.mmio.Add(1)
	case e.Reason == kvm.ExitHLT:
		c.hlt.Add(1)
	case e.Reason == kvm.ExitIntr:
		c.interrupted.Add(1)
	default:
		c.other.Add(1)
	}
}

// Exits returns the exits counted so far, over all vCPUs. It may be called
// at any time, also while the machine runs.
func (m *Machine) Exits() Exits {
	var s Exits
	for _, v := range m.vcpus {
		s.IO += v.exits.io.Load()
		s.MMIO += v.exits.mmio.Load()
		s.HLT += v.exits.hlt.Load()
		s.Interrupted += v.exits.interrupted.Load()
		s.Other += v.exits.other.Load()
	}
	return s
}
