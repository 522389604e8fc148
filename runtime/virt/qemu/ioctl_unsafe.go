package qemu

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr is ioctl(fd, req, v) for a request that reads a __u64.
func ioctlPtr(fd int, req uintptr, v *uint64) error {
	// v points at a live uint64 for the whole call, which only reads it.
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(v)))
	if errno != 0 {
		return errno
	}
	return nil
}
