// Package boottimer lets a guest tell the VMM "I got here": a one-byte
// MMIO register that records the time of each write of Magic, as
// Firecracker's boot timer does. An init script marks the moment it runs
// with busybox's `devmem <Base> 8 123`; the VMM reports the time from the
// first vCPU instruction, which is how husk measures boot-to-/init (P9).
package boottimer

import (
	"sync"
	"time"
)

// Magic is the value a guest writes to mark a moment.
const Magic = 123

// Size is the register window.
const Size = 0x1000

// maxMarks bounds what a guest writing in a loop can make the VMM keep.
const maxMarks = 64

// Timer records marks relative to a start the VMM sets.
type Timer struct {
	mu    sync.Mutex
	start time.Time       // guarded by mu
	marks []time.Duration // guarded by mu
	// OnMark, when set, is called with each mark, outside the lock.
	OnMark func(time.Duration)
}

// Start sets the moment marks are measured from.
func (t *Timer) Start(at time.Time) {
	t.mu.Lock()
	t.start = at
	t.mu.Unlock()
}

// Marks returns the marks so far.
func (t *Timer) Marks() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.marks...)
}

// Read implements bus.Device: the register reads 0.
func (t *Timer) Read(_ uint64, data []byte) { clear(data) }

// Write implements bus.Device.
func (t *Timer) Write(offset uint64, data []byte) error {
	if offset != 0 || len(data) != 1 || data[0] != Magic {
		return nil
	}
	t.mu.Lock()
	d := time.Since(t.start)
	if len(t.marks) == maxMarks {
		t.mu.Unlock()
		return nil
	}
	t.marks = append(t.marks, d)
	t.mu.Unlock()
	if t.OnMark != nil {
		t.OnMark(d)
	}
	return nil
}
