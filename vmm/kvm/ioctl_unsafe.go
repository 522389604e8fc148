package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues a request whose argument is a plain integer. A request
// interrupted by a signal (the Go runtime's own preemption signal, SIGURG,
// among them: KVM_CREATE_VM was seen failing with EINTR under load) is
// issued again — except KVM_RUN, whose EINTR is how a vCPU is stopped.
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		switch {
		case errno == unix.EINTR && req != kvmRun:
			continue
		case errno != 0:
			return r, errno
		}
		return r, nil
	}
}

// ioctlPtr issues a request whose argument points to *p. The kernel reads
// or writes *p only during the call.
func ioctlPtr[T any](fd int, req uintptr, p *T) (uintptr, error) {
	// p is a live Go pointer converted in the Syscall argument list, which
	// keeps it valid and unmoved for the duration of the call (rule 4 of
	// package unsafe); T holds no Go pointers the kernel could see.
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(p)))
		switch {
		case errno == unix.EINTR && req != kvmRun:
			continue // as in ioctl
		case errno != 0:
			return r, errno
		}
		return r, nil
	}
}

// hostAddr returns the host virtual address of b[0], for KVM to map.
// Preconditions: b is non-empty and is not in the Go heap (guest memory is
// an mmap the Go runtime never moves or frees), so the address stays valid
// after the conversion for as long as the mapping lives.
func hostAddr(b []byte) uint64 {
	// b's backing array is mmap'd memory outside the Go heap (see above).
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
