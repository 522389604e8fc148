// Package bus routes a vCPU's port I/O and MMIO exits to the device that
// owns the address. A bus is built before the machine runs and read-only
// afterwards, so vCPUs dispatch on it concurrently without locks; devices
// do their own locking.
//
// An access nobody owns, or one that runs past the end of the range that
// contains its first byte, is unclaimed: the caller reads all ones (a
// floating bus, what a PC returns for an empty port) and drops writes. The
// guest probes many addresses that are not there; that is not an error.
package bus

import (
	"errors"
	"fmt"
	"sort"
)

// Device handles accesses inside its range. offset is relative to the
// range's base, and [offset, offset+len(data)) lies inside the range. For
// a read the device fills data. A write's error ends the vCPU's run; it is
// how a device reports that the guest asked to power off or reboot.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte) error
}

// ErrOverlap reports a range that overlaps one already on the bus.
var ErrOverlap = errors.New("bus ranges overlap")

type entry struct {
	base, size uint64
	dev        Device
}

func (e entry) end() uint64 { return e.base + e.size }

// Bus maps address ranges to devices.
type Bus struct {
	entries []entry // sorted by base, disjoint
}

// Add puts dev at [base, base+size). It must be called before the bus is
// used for dispatch.
func (b *Bus) Add(base, size uint64, dev Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("bus range [%#x, +%#x) is empty or wraps", base, size)
	}
	n := entry{base, size, dev}
	i := sort.Search(len(b.entries), func(i int) bool { return b.entries[i].base >= base })
	if i > 0 && b.entries[i-1].end() > base || i < len(b.entries) && b.entries[i].base < n.end() {
		return fmt.Errorf("%w: [%#x, +%#x)", ErrOverlap, base, size)
	}
	b.entries = append(b.entries, entry{})
	copy(b.entries[i+1:], b.entries[i:])
	b.entries[i] = n
	return nil
}

// find returns the device owning [addr, addr+n) and the offset of addr in
// its range.
func (b *Bus) find(addr uint64, n int) (Device, uint64, bool) {
	i := sort.Search(len(b.entries), func(i int) bool { return b.entries[i].end() > addr })
	if i == len(b.entries) {
		return nil, 0, false
	}
	e := b.entries[i]
	if addr < e.base || uint64(n) > e.end()-addr {
		return nil, 0, false
	}
	return e.dev, addr - e.base, true
}

// Read dispatches a read. An unclaimed read fills data with all ones and
// returns false.
func (b *Bus) Read(addr uint64, data []byte) bool {
	d, off, ok := b.find(addr, len(data))
	if !ok {
		for i := range data {
			data[i] = 0xff
		}
		return false
	}
	d.Read(off, data)
	return true
}

// Write dispatches a write. An unclaimed write is dropped and returns
// false.
func (b *Bus) Write(addr uint64, data []byte) (bool, error) {
	d, off, ok := b.find(addr, len(data))
	if !ok {
		return false, nil
	}
	return true, d.Write(off, data)
}
