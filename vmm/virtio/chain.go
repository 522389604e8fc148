package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Descriptor flags (virtio 1.2, 2.7.5).
const (
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4
)

// Reasons a chain is malformed. Each is reported wrapped, with the offending
// index or address, to Config.OnMalformed.
var (
	ErrHeadRange        = errors.New("head index out of range")
	ErrNextRange        = errors.New("next index out of range")
	ErrChainTooLong     = errors.New("chain longer than the queue size (loop?)")
	ErrBufferRange      = errors.New("buffer is not inside guest RAM")
	ErrDirection        = errors.New("device-readable buffer after a device-writable one")
	ErrIndirectDisabled = errors.New("indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC")
	ErrIndirectNested   = errors.New("indirect descriptor inside an indirect table")
	ErrIndirectNext     = errors.New("indirect descriptor with the NEXT flag")
	ErrIndirectSize     = errors.New("indirect table length is zero, not a multiple of 16, or more than the queue size entries")
	ErrIndirectRange    = errors.New("indirect table is not inside guest RAM")
)

// Buffer is one guest buffer of a chain, already confined to RAM.
type Buffer struct {
	GPA uint64 // guest physical address of Data[0]
	// Data aliases guest memory: the guest can change it while the device
	// reads it, so a device copies whatever it validates before using it.
	Data []byte
}

// Chain is a well-formed descriptor chain: its device-readable buffers,
// then its device-writable ones, in chain order.
type Chain struct {
	Head     uint16 // the id to complete the chain with (Queue.Push)
	Buffers  []Buffer
	Readable int // Buffers[:Readable] are device-readable, the rest writable
}

// ReadableBuffers returns the device-readable buffers.
func (c *Chain) ReadableBuffers() []Buffer { return c.Buffers[:c.Readable] }

// WritableBuffers returns the device-writable buffers.
func (c *Chain) WritableBuffers() []Buffer { return c.Buffers[c.Readable:] }

// desc is one descriptor, copied out of guest memory once.
type desc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

// readDesc copies descriptor i of the table at gpa. The caller has checked
// i against the table's length.
func (q *Queue) readDesc(table uint64, i uint16) (desc, error) {
	var b [descSize]byte
	if err := q.mem.ReadAt(b[:], table+descSize*uint64(i)); err != nil {
		return desc{}, err
	}
	return desc{
		addr:  binary.LittleEndian.Uint64(b[0:]),
		len:   binary.LittleEndian.Uint32(b[8:]),
		flags: binary.LittleEndian.Uint16(b[12:]),
		next:  binary.LittleEndian.Uint16(b[14:]),
	}, nil
}

// walk follows the chain starting at head. At most Size descriptors are
// visited in all (direct and indirect), so loops end and the Buffers slice
// never grows past Size entries whatever the guest wrote.
func (q *Queue) walk(head uint16) (Chain, error) {
	size := q.cfg.Size
	if head >= size {
		return Chain{}, fmt.Errorf("%w: head %d, size %d", ErrHeadRange, head, size)
	}
	c := Chain{Head: head}
	table, tableLen, i := q.cfg.DescTable, size, head
	indirect := false
	for ttl := int(size); ; ttl-- {
		if ttl == 0 {
			return Chain{}, fmt.Errorf("%w: more than %d descriptors", ErrChainTooLong, size)
		}
		d, err := q.readDesc(table, i)
		if err != nil {
			// The main table was validated by New; only a table that
			// moved out of RAM could fail here, which cannot happen.
			return Chain{}, fmt.Errorf("descriptor %d: %w", i, err)
		}
		if d.flags&descFIndirect != 0 {
			if table, tableLen, err = q.indirectTable(d, indirect); err != nil {
				return Chain{}, fmt.Errorf("descriptor %d: %w", i, err)
			}
			i, indirect = 0, true
			continue
		}
		data, err := q.mem.Slice(d.addr, uint64(d.len))
		if err != nil {
			return Chain{}, fmt.Errorf("%w: descriptor %d [%#x, +%#x)", ErrBufferRange, i, d.addr, d.len)
		}
		writable := d.flags&descFWrite != 0
		if !writable && c.Readable != len(c.Buffers) {
			return Chain{}, fmt.Errorf("%w: descriptor %d", ErrDirection, i)
		}
		c.Buffers = append(c.Buffers, Buffer{GPA: d.addr, Data: data})
		if !writable {
			c.Readable++
		}
		if d.flags&descFNext == 0 {
			return c, nil
		}
		if d.next >= tableLen {
			return Chain{}, fmt.Errorf("%w: descriptor %d names %d, table has %d", ErrNextRange, i, d.next, tableLen)
		}
		i = d.next
	}
}

// indirectTable validates an indirect descriptor and returns the table it
// points to and its number of entries.
func (q *Queue) indirectTable(d desc, inIndirect bool) (uint64, uint16, error) {
	switch {
	case !q.cfg.Indirect:
		return 0, 0, ErrIndirectDisabled
	case inIndirect:
		return 0, 0, ErrIndirectNested
	case d.flags&descFNext != 0:
		return 0, 0, ErrIndirectNext
	case d.len == 0 || d.len%descSize != 0 || d.len/descSize > uint32(q.cfg.Size):
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrIndirectSize, d.len)
	case !q.mem.Contains(d.addr, uint64(d.len)):
		return 0, 0, fmt.Errorf("%w: [%#x, +%#x)", ErrIndirectRange, d.addr, d.len)
	}
	return d.addr, uint16(d.len / descSize), nil
}
