package wasmhost

import "syscall"

// mapMemory reserves size bytes of private anonymous memory. MAP_NORESERVE:
// pages count when touched, not when reserved.
func mapMemory(size uint64) ([]byte, bool) {
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	return b, err == nil
}

func unmapMemory(b []byte) { _ = syscall.Munmap(b) }
