package memory

import (
	"encoding/binary"
	"fmt"
)

// find returns the offset into the region holding [gpa, gpa+n), or an error
// wrapping ErrOutOfRange. A zero-length range must start inside a region.
// The arithmetic never overflows: gpa+n is computed only after n is known
// to be at most the room left in the region.
func (m *Memory) find(gpa, n uint64) (*Region, uint64, error) {
	for i := range m.regions {
		r := &m.regions[i]
		size := uint64(len(r.Host))
		if gpa < r.GPA || gpa-r.GPA >= size {
			continue
		}
		off := gpa - r.GPA
		if n > size-off {
			break
		}
		return r, off, nil
	}
	return nil, 0, fmt.Errorf("%w: [%#x, +%#x)", ErrOutOfRange, gpa, n)
}

// Slice returns the host bytes behind guest physical [gpa, gpa+n). The range
// must lie wholly inside one RAM region. The slice's capacity equals its
// length, so appending to it can never reach the bytes after the range. It
// aliases guest memory: the guest may change it at any time.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	r, off, err := m.find(gpa, n)
	if err != nil {
		return nil, err
	}
	return r.Host[off : off+n : off+n], nil
}

// Contains reports whether guest physical [gpa, gpa+n) is RAM.
func (m *Memory) Contains(gpa, n uint64) bool {
	_, _, err := m.find(gpa, n)
	return err == nil
}

// ReadAt copies len(p) bytes from guest physical gpa into p.
func (m *Memory) ReadAt(p []byte, gpa uint64) error {
	b, err := m.Slice(gpa, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(p, b)
	return nil
}

// WriteAt copies p to guest physical gpa.
func (m *Memory) WriteAt(p []byte, gpa uint64) error {
	b, err := m.Slice(gpa, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(b, p)
	return nil
}

// ReadUint16 reads a little-endian uint16 at gpa.
func (m *Memory) ReadUint16(gpa uint64) (uint16, error) {
	b, err := m.Slice(gpa, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

// ReadUint32 reads a little-endian uint32 at gpa.
func (m *Memory) ReadUint32(gpa uint64) (uint32, error) {
	b, err := m.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// ReadUint64 reads a little-endian uint64 at gpa.
func (m *Memory) ReadUint64(gpa uint64) (uint64, error) {
	b, err := m.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// WriteUint16 writes v little-endian at gpa.
func (m *Memory) WriteUint16(gpa uint64, v uint16) error {
	b, err := m.Slice(gpa, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(b, v)
	return nil
}

// WriteUint32 writes v little-endian at gpa.
func (m *Memory) WriteUint32(gpa uint64, v uint32) error {
	b, err := m.Slice(gpa, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b, v)
	return nil
}

// WriteUint64 writes v little-endian at gpa.
func (m *Memory) WriteUint64(gpa uint64, v uint64) error {
	b, err := m.Slice(gpa, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b, v)
	return nil
}
