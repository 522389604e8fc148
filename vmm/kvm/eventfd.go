package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// EventFD is a Linux eventfd: a counter KVM can signal (ioeventfd) or wait
// on (irqfd) without a trip through the VMM's vCPU threads. It is read and
// written through the Go runtime's poller, so a goroutine blocked in Wait
// does not hold an OS thread, and Close wakes it.
type EventFD struct {
	fd   int      // the descriptor, for registration with KVM
	file *os.File // the same descriptor, owned: Close closes it
}

// NewEventFD creates a non-blocking, close-on-exec eventfd with count 0.
func NewEventFD() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &EventFD{fd: fd, file: os.NewFile(uintptr(fd), "eventfd")}, nil
}

// FD returns the file descriptor, for registration with KVM. It is valid
// until Close.
func (e *EventFD) FD() int { return e.fd }

// Signal adds 1 to the counter, waking a waiter (for an irqfd: injecting
// the interrupt). It is safe to call concurrently with Close: after Close
// it returns an error wrapping os.ErrClosed and writes nothing.
func (e *EventFD) Signal() error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	if _, err := e.file.Write(b[:]); err != nil {
		return fmt.Errorf("signal eventfd: %w", err)
	}
	return nil
}

// Wait blocks until the counter is non-zero, then returns it and resets it
// to zero. After Close (also one that happens while it waits) it returns
// an error wrapping os.ErrClosed.
func (e *EventFD) Wait() (uint64, error) {
	var b [8]byte
	n, err := e.file.Read(b[:])
	if err != nil {
		return 0, fmt.Errorf("read eventfd: %w", err)
	}
	if n != 8 {
		return 0, fmt.Errorf("read eventfd: %d bytes", n)
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}

// Close closes the eventfd and wakes a Wait in progress. Calling it twice
// is harmless.
func (e *EventFD) Close() error {
	if err := e.file.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// IOEvent says which guest write an ioeventfd matches.
type IOEvent struct {
	Addr uint64 // guest physical (MMIO) or port (PIO) address
	Len  uint32 // access size: 1, 2, 4 or 8; 0 matches any size (MMIO only)
	PIO  bool   // port I/O rather than MMIO

	// With DataMatch, only writes of Data signal; otherwise every write.
	DataMatch bool
	Data      uint64
}

func (ev IOEvent) kernel(fd int, flags uint32) *ioeventfd {
	k := &ioeventfd{addr: ev.Addr, len: ev.Len, fd: int32(fd), flags: flags}
	if ev.PIO {
		k.flags |= ioeventfdFlagPIO
	}
	if ev.DataMatch {
		k.flags |= ioeventfdFlagDatamatch
		k.datamatch = ev.Data
	}
	return k
}

// RegisterIOEvent makes matching guest writes signal e inside the kernel:
// the vCPU does not exit to userspace for them.
func (v *VM) RegisterIOEvent(ev IOEvent, e *EventFD) error {
	if _, err := ioctlPtr(v.fd, kvmIOEventFD, ev.kernel(e.fd, 0)); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD %+v: %w", ev, err)
	}
	return nil
}

// UnregisterIOEvent undoes RegisterIOEvent with the same arguments.
func (v *VM) UnregisterIOEvent(ev IOEvent, e *EventFD) error {
	if _, err := ioctlPtr(v.fd, kvmIOEventFD, ev.kernel(e.fd, ioeventfdFlagDeassign)); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD deassign %+v: %w", ev, err)
	}
	return nil
}

// RegisterIRQFD makes every signal of e inject an edge on irqchip input
// gsi, inside the kernel. Needs the irqchip.
func (v *VM) RegisterIRQFD(e *EventFD, gsi uint32) error {
	if _, err := ioctlPtr(v.fd, kvmIRQFD, &irqfd{fd: uint32(e.fd), gsi: gsi}); err != nil {
		return fmt.Errorf("KVM_IRQFD gsi %d: %w", gsi, err)
	}
	return nil
}

// UnregisterIRQFD undoes RegisterIRQFD.
func (v *VM) UnregisterIRQFD(e *EventFD, gsi uint32) error {
	if _, err := ioctlPtr(v.fd, kvmIRQFD, &irqfd{fd: uint32(e.fd), gsi: gsi, flags: irqfdFlagDeassign}); err != nil {
		return fmt.Errorf("KVM_IRQFD deassign gsi %d: %w", gsi, err)
	}
	return nil
}
