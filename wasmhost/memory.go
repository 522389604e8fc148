package wasmhost

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory is the memory of one instance: one private anonymous
// mapping of the memory's maximum size (at most the module's memory
// limit), reserved without being committed. Growing the memory only
// lengthens the slice wazero sees: nothing is copied, and the host holds
// what the module touched, never more than the limit. (wazero's own
// memory, a Go slice, is reallocated and copied as it grows: a module
// growing to its 64 MiB limit page by page cost 287 MiB of host memory and
// 1.6 s.) The mapping is returned to the kernel when the instance is
// closed, not when the Go collector runs.
type linearMemory struct {
	mu     sync.Mutex
	buf    []byte // the mapping (or, if mapping failed, a Go slice); nil after unmap
	max    uint64
	mapped bool
}

// allocator returns the wazero allocator that backs an instance's memory
// with m.
func (m *linearMemory) allocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.max = max
		if max == 0 {
			return m
		}
		m.buf, m.mapped = mapMemory(max)
		return m
	})
}

// Reallocate implements experimental.LinearMemory: the first size bytes of
// the mapping, or nil (memory.grow fails) beyond the maximum.
func (m *linearMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case size > m.max:
		return nil
	case m.mapped:
		return m.buf[:size]
	case size > uint64(len(m.buf)): // no mapping: grow a Go slice, as wazero does
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	return m.buf[:size]
}

// Free implements experimental.LinearMemory. wazero calls it when the
// instance is closed, which the deadline does while the module's code may
// still be running on another goroutine: the mapping stays until unmap,
// which the pool calls once no call uses the instance.
func (m *linearMemory) Free() {}

// unmap returns the mapping to the kernel. The instance must be closed
// and no call may be running in it.
func (m *linearMemory) unmap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mapped {
		unmapMemory(m.buf)
		m.mapped = false
	}
	m.buf, m.max = nil, 0
}
