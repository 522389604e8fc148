package machine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/vmm/kvm"
)

// ExitHandler handles an I/O or MMIO exit of vCPU cpu. For a guest read it
// fills exit.Data. It runs on that vCPU's goroutine, so it must be quick;
// an error ends Run (ErrPowerOff ends it cleanly).
type ExitHandler func(cpu int, exit kvm.Exit) error

// vcpu is a kvm.VCPU and the OS thread running it.
type vcpu struct {
	*kvm.VCPU
	tid   atomic.Int32 // thread in KVM_RUN, 0 when none
	exits exitCounts
}

// kickSignal interrupts a vCPU thread inside KVM_RUN. SIGURG is the signal
// the Go runtime itself uses to preempt goroutines: it is always handled,
// never fatal, never reported to signal.Notify callers that did not ask for
// it, and harmless when it lands on another thread of the process.
const kickSignal = unix.SIGURG

// Run runs the vCPUs until a handler returns an error, a vCPU fails, or
// ctx is done; it then stops every vCPU and returns the first error (nil
// for ErrPowerOff, ctx.Err() for a cancelled context). A machine runs once.
func (m *Machine) Run(ctx context.Context, h ExitHandler) error {
	m.mu.Lock()
	if m.state != stateCreated {
		m.mu.Unlock()
		return fmt.Errorf("%w: Run while %v", ErrState, m.state)
	}
	m.state = stateRunning
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.state = stateStopped
		m.mu.Unlock()
	}()

	var stopping atomic.Bool
	errs := make(chan error, len(m.vcpus))
	var wg sync.WaitGroup
	for _, v := range m.vcpus {
		first := func() {}
		if v.ID() == 0 {
			first = m.recordFirstRun
		}
		wg.Go(func() { errs <- v.loop(&stopping, h, first) })
	}
	var first error
	select {
	case first = <-errs:
	case <-ctx.Done():
		first = ctx.Err()
	}
	stopping.Store(true)
	for _, v := range m.vcpus {
		v.kick()
	}
	wg.Wait()
	if errors.Is(first, ErrPowerOff) {
		return nil
	}
	return first
}

// loop runs one vCPU on a dedicated OS thread until stopping is set or it
// fails. KVM_RUN must always come from the same thread, and kick needs to
// know which thread that is.
// first is called once, just before the first KVM_RUN.
func (v *vcpu) loop(stopping *atomic.Bool, h ExitHandler, first func()) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Publish the thread before checking stopping: either kick sees the
	// tid and signals it, or this loop sees stopping (both are atomic).
	v.tid.Store(int32(unix.Gettid()))
	defer v.tid.Store(0)
	if !stopping.Load() {
		first()
	}
	for !stopping.Load() {
		exit, err := v.Run()
		v.exits.count(exit, err)
		if err != nil {
			return err
		}
		switch exit.Reason {
		case kvm.ExitIO, kvm.ExitMMIO:
			if err := h(v.ID(), exit); err != nil {
				return err
			}
		case kvm.ExitIntr:
			// A kick or a stray signal: re-check stopping.
		default:
			return fmt.Errorf("vCPU %d: %w", v.ID(), &kvm.UnexpectedExitError{Reason: exit.Reason})
		}
	}
	return nil
}

// kick makes the vCPU leave KVM_RUN: immediate_exit catches a Run about to
// enter the guest, the signal one already inside it.
func (v *vcpu) kick() {
	v.RequestExit(true)
	if tid := v.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), kickSignal)
	}
}
