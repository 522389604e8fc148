// Package kvm is a thin, typed layer over the Linux KVM ioctls for x86-64:
// the system (/dev/kvm), a VM (memory slots, in-kernel irqchip and PIT,
// ioeventfd, irqfd) and its vCPUs (registers, CPUID, MSRs, KVM_RUN and its
// exits). It holds no policy: the machine above it decides what to set up.
//
// unsafe is confined to the *_unsafe.go files.
package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

var (
	// ErrUnavailable reports that /dev/kvm cannot be opened.
	ErrUnavailable = errors.New("KVM is unavailable")
	// ErrAPIVersion reports a KVM API version other than APIVersion.
	ErrAPIVersion = errors.New("unsupported KVM API version")
	// ErrMissingCapability reports a KVM without a capability husk needs.
	ErrMissingCapability = errors.New("KVM lacks a required capability")
	// ErrClosed reports use of a closed System, VM or VCPU.
	ErrClosed = errors.New("KVM file descriptor is closed")
)

// DevicePath is where the KVM device lives.
const DevicePath = "/dev/kvm"

// System is an open /dev/kvm.
type System struct {
	fd       int
	mmapSize int // size of each vCPU's kvm_run mapping
}

// Open opens /dev/kvm and checks the API version and the capabilities husk
// relies on, so that a machine without them fails here with a clear error
// rather than halfway through building a VM.
func Open() (*System, error) {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrUnavailable, DevicePath, err)
	}
	s := &System{fd: fd}
	if err := s.check(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *System) check() error {
	v, err := ioctl(s.fd, kvmGetAPIVersion, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != APIVersion {
		return fmt.Errorf("%w: %d, want %d", ErrAPIVersion, v, APIVersion)
	}
	for _, c := range requiredCaps {
		if ok, err := s.hasCap(c.cap); err != nil || !ok {
			return fmt.Errorf("%w: %s (err %v)", ErrMissingCapability, c.name, err)
		}
	}
	n, err := ioctl(s.fd, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	if n < runMinSize {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %d bytes, want at least %d", n, runMinSize)
	}
	s.mmapSize = int(n)
	return nil
}

func (s *System) hasCap(c uintptr) (bool, error) {
	r, err := ioctl(s.fd, kvmCheckExtension, c)
	return r > 0, err
}

// TSCDeadlineTimer reports whether the in-kernel local APIC emulates the
// TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER). KVM does not put that
// in SupportedCPUID; a VMM that wants guests to use it sets the bit itself
// (see SetTSCDeadline).
func (s *System) TSCDeadlineTimer() bool {
	ok, err := s.hasCap(capTSCDeadlineTimer)
	return ok && err == nil
}

// SupportedCPUID returns the CPUID leaves KVM can expose to a guest on this
// host, before any per-vCPU normalisation (see NormalizeCPUID).
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	if s.fd < 0 {
		return nil, ErrClosed
	}
	c := &cpuid2{nent: maxCPUIDEntries}
	if _, err := ioctlPtr(s.fd, kvmGetSupportedCPUID, c); err != nil {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	n := min(int(c.nent), maxCPUIDEntries)
	return append([]CPUIDEntry(nil), c.entries[:n]...), nil
}

// CreateVM creates an empty VM: no memory, no vCPUs, no irqchip.
func (s *System) CreateVM() (*VM, error) {
	if s.fd < 0 {
		return nil, ErrClosed
	}
	fd, err := ioctl(s.fd, kvmCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	unix.CloseOnExec(int(fd))
	return &VM{fd: int(fd), mmapSize: s.mmapSize}, nil
}

// Close closes /dev/kvm. VMs created from it stay usable.
func (s *System) Close() error {
	return closeFD(&s.fd)
}

// closeFD closes *fd once and marks it closed.
func closeFD(fd *int) error {
	if *fd < 0 {
		return nil
	}
	err := unix.Close(*fd)
	*fd = -1
	return err
}
