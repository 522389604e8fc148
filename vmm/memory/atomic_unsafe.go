package memory

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Atomic accesses order the device's view of shared rings against the
// guest's: a virtqueue's available index must be read before the entries it
// publishes (acquire), and the used index written after the entries it
// publishes (release). Go's sync/atomic operations are sequentially
// consistent, which gives both, and also keep the compiler from reordering
// plain accesses across them. This file is amd64-only in practice: guest
// memory is little-endian and x86 does not fault on these accesses.

// LoadUint16Acquire atomically loads the little-endian uint16 at a 2-aligned
// gpa. It loads the 4-aligned word holding it: that word lies in the same
// page, and regions are page-aligned, so it is RAM too.
func (m *Memory) LoadUint16Acquire(gpa uint64) (uint16, error) {
	if gpa%2 != 0 {
		return 0, fmt.Errorf("%w: 16-bit load at %#x", ErrMisaligned, gpa)
	}
	word := gpa &^ 3
	b, err := m.Slice(word, 4)
	if err != nil {
		return 0, fmt.Errorf("16-bit load at %#x: %w", gpa, err)
	}
	// b is 4 bytes of mapped memory at a 4-aligned host address (the mapping
	// is page-aligned and word is 4-aligned), so it is a valid *uint32.
	v := atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0])))
	return uint16(v >> (8 * (gpa - word))), nil
}

// StoreUint32Release atomically stores v little-endian at a 4-aligned gpa.
// Use it only for a word the device alone writes (such as a used ring's
// flags and index), since it replaces all four bytes.
func (m *Memory) StoreUint32Release(gpa uint64, v uint32) error {
	if gpa%4 != 0 {
		return fmt.Errorf("%w: 32-bit store at %#x", ErrMisaligned, gpa)
	}
	b, err := m.Slice(gpa, 4)
	if err != nil {
		return fmt.Errorf("32-bit store at %#x: %w", gpa, err)
	}
	// b is 4 bytes of mapped memory at a 4-aligned host address (see above).
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b[0])), v)
	return nil
}

// LoadUint32Acquire atomically loads the little-endian uint32 at a 4-aligned gpa.
func (m *Memory) LoadUint32Acquire(gpa uint64) (uint32, error) {
	if gpa%4 != 0 {
		return 0, fmt.Errorf("%w: 32-bit load at %#x", ErrMisaligned, gpa)
	}
	b, err := m.Slice(gpa, 4)
	if err != nil {
		return 0, fmt.Errorf("32-bit load at %#x: %w", gpa, err)
	}
	// b is 4 bytes of mapped memory at a 4-aligned host address (see above).
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0]))), nil
}
