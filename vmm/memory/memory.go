// Package memory is guest RAM: one anonymous host mapping split into guest
// physical regions around the MMIO hole below 4 GiB, and the only way device
// code reaches guest bytes. Every guest physical address that comes from the
// guest is hostile; each access here is bounds- and overflow-checked and fails
// with an error wrapping ErrOutOfRange, never with a panic or a fault.
package memory

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The MMIO hole: guest physical addresses [MMIOHoleStart, MMIOHoleEnd) are
// never RAM. Devices (virtio-mmio, the IOAPIC, the local APIC) live there.
// RAM beyond MMIOHoleStart continues at MMIOHoleEnd.
const (
	MMIOHoleStart uint64 = 0xC000_0000 // 3 GiB
	MMIOHoleEnd   uint64 = 1 << 32     // 4 GiB
)

// PageSize is the granularity of guest RAM sizes and region boundaries.
const PageSize = 4096

// MaxSize bounds the guest RAM a Memory can hold. It keeps every sum of an
// address and a length inside this package far from 2^64.
const MaxSize uint64 = 1 << 40

var (
	// ErrOutOfRange reports an access that is not wholly inside one RAM
	// region: in the MMIO hole, beyond RAM, or wrapping around 2^64.
	ErrOutOfRange = errors.New("guest memory access out of range")
	// ErrMisaligned reports an atomic access at an address that is not a
	// multiple of its size.
	ErrMisaligned = errors.New("misaligned guest memory access")
	// ErrInvalidSize reports a RAM size that is zero, not a multiple of
	// PageSize, or larger than MaxSize.
	ErrInvalidSize = errors.New("invalid guest memory size")
)

// Region is one contiguous range of guest RAM and the host bytes behind it.
type Region struct {
	GPA  uint64 // guest physical address of Host[0]
	Host []byte // len(Host) bytes of RAM, a sub-slice of the one mapping
}

// End returns the first guest physical address after the region.
func (r Region) End() uint64 { return r.GPA + uint64(len(r.Host)) }

// Memory is guest RAM. Its layout never changes after New, so it is safe
// for concurrent use by vCPUs and devices; the guest may change the bytes
// at any moment, so callers copy what they validate (no double fetches).
//
// Close must be called only after every vCPU and device has stopped using
// the memory: it unmaps the host pages.
type Memory struct {
	mapping []byte
	regions []Region
}

// New maps size bytes of anonymous memory (MAP_NORESERVE: pages are only
// allocated when touched) and lays them out as guest RAM starting at guest
// physical 0, continuing above 4 GiB for what does not fit below the hole.
func New(size uint64) (*Memory, error) {
	if size == 0 || size%PageSize != 0 || size > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (want a multiple of %d in (0, %d])", ErrInvalidSize, size, PageSize, MaxSize)
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes of guest memory: %w", size, err)
	}
	m := &Memory{mapping: b}
	low := min(size, MMIOHoleStart)
	m.regions = append(m.regions, Region{GPA: 0, Host: b[:low:low]})
	if size > low {
		m.regions = append(m.regions, Region{GPA: MMIOHoleEnd, Host: b[low:size:size]})
	}
	return m, nil
}

// Size returns the number of bytes of guest RAM.
func (m *Memory) Size() uint64 { return uint64(len(m.mapping)) }

// Regions returns the RAM regions in ascending guest physical order. The
// caller must not keep the host slices past Close.
func (m *Memory) Regions() []Region {
	return append([]Region(nil), m.regions...)
}

// Close unmaps guest memory. Every later access faults, so it must run after
// all users have stopped; calling it twice is harmless.
func (m *Memory) Close() error {
	if m.mapping == nil {
		return nil
	}
	b := m.mapping
	m.mapping, m.regions = nil, nil
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("munmap guest memory: %w", err)
	}
	return nil
}
