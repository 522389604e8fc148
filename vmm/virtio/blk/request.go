package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/huskrt/husk/vmm/virtio"
)

// Request types and status values (virtio 1.2, 5.2.6).
const (
	typeIn    = 0
	typeOut   = 1
	typeFlush = 4
	typeGetID = 8

	statusOK     = 0
	statusIOErr  = 1
	statusUnsupp = 2

	headerSize = 16 // type, reserved, sector
)

// Why a request is refused.
var (
	errNoStatus    = errors.New("no device-writable byte for the status")
	errShortHeader = errors.New("request header shorter than 16 bytes")
	errAlignment   = errors.New("data length is not a multiple of the sector size")
	errRange       = errors.New("sectors beyond the end of the disk")
	errTooLarge    = errors.New("request larger than 4 GiB")
	errEmpty       = errors.New("no backend: the slot is empty")
)

// request is a parsed virtio-blk request. Its slices alias guest memory.
type request struct {
	typ    uint32
	sector uint64
	// in is the device-writable data (IN, GET_ID: filled by the device),
	// out the device-readable data after the header (OUT).
	in, out         [][]byte
	inSize, outSize uint64
	status          []byte // the last device-writable byte
}

// parseRequest splits a chain into header, data and status. The header is
// copied (the guest may rewrite it); the data and status stay in guest
// memory. The slices it returns number at most the chain's buffers.
func parseRequest(c *virtio.Chain) (request, error) {
	var r request
	w := c.WritableBuffers()
	last := len(w) - 1
	for last >= 0 && len(w[last].Data) == 0 {
		last--
	}
	if last < 0 {
		return r, errNoStatus
	}
	sb := w[last].Data
	r.status = sb[len(sb)-1:]
	for i, b := range w[:last+1] {
		d := b.Data
		if i == last {
			d = d[:len(d)-1]
		}
		if len(d) > 0 {
			r.in = append(r.in, d)
			r.inSize += uint64(len(d))
		}
	}

	var hdr [headerSize]byte
	got := 0
	for _, b := range c.ReadableBuffers() {
		d := b.Data
		n := copy(hdr[got:], d)
		got += n
		if d = d[n:]; len(d) > 0 {
			r.out = append(r.out, d)
			r.outSize += uint64(len(d))
		}
	}
	if got < headerSize {
		return r, fmt.Errorf("%w: %d bytes", errShortHeader, got)
	}
	r.typ = binary.LittleEndian.Uint32(hdr[0:])
	r.sector = binary.LittleEndian.Uint64(hdr[8:])
	return r, nil
}

// handle serves one chain and returns the used length: the bytes written
// into the chain's device-writable buffers, status included; 0 for a chain
// with no room for a status. It holds the backend for the whole request.
func (d *Device) handle(c *virtio.Chain) uint32 {
	d.io.RLock()
	defer d.io.RUnlock()
	r, err := parseRequest(c)
	if errors.Is(err, errNoStatus) {
		d.count(func(s *Stats) { s.Malformed++ })
		return 0
	}
	if err != nil {
		r.status[0] = statusIOErr
		d.count(func(s *Stats) { s.Errors++ })
		return 1
	}
	status, data := d.execute(&r)
	r.status[0] = status
	if status != statusOK {
		d.count(func(s *Stats) { s.Errors++ })
	}
	return data + 1
}

// execute performs a parsed request and returns its status and the number
// of data bytes it wrote into guest memory. An empty device fails reads and
// writes, flushes nothing and has an empty id.
//
// Preconditions: d.io is held (shared).
func (d *Device) execute(r *request) (byte, uint32) {
	switch r.typ {
	case typeIn:
		off, err := d.span(r.sector, r.inSize)
		if err != nil {
			return statusIOErr, 0
		}
		for _, b := range r.in {
			if _, err := d.backend.ReadAt(b, int64(off)); err != nil {
				return statusIOErr, 0
			}
			off += uint64(len(b))
		}
		d.count(func(s *Stats) { s.Reads++; s.BytesRead += r.inSize })
		return statusOK, uint32(r.inSize)
	case typeOut:
		if d.readOnly {
			return statusIOErr, 0
		}
		off, err := d.span(r.sector, r.outSize)
		if err != nil {
			return statusIOErr, 0
		}
		for _, b := range r.out {
			if _, err := d.backend.WriteAt(b, int64(off)); err != nil {
				return statusIOErr, 0
			}
			off += uint64(len(b))
		}
		d.count(func(s *Stats) { s.Writes++; s.BytesWritten += r.outSize })
		return statusOK, 0
	case typeFlush:
		// Empty: nothing to flush; a retired backend was synced when it
		// left (retire).
		if !d.readOnly && d.backend != nil {
			if err := d.backend.Sync(); err != nil {
				return statusIOErr, 0
			}
		}
		d.count(func(s *Stats) { s.Flushes++ })
		return statusOK, 0
	case typeGetID:
		n := 0
		for _, b := range r.in {
			if n == IDBytes {
				break
			}
			n += copy(b, d.id[n:])
		}
		d.count(func(s *Stats) { s.IDs++ })
		return statusOK, uint32(n)
	default:
		return statusUnsupp, 0
	}
}

// span checks that size bytes from sector are whole sectors on the disk
// and returns the byte offset; nothing here can overflow. An empty device
// has no sectors to name, not even zero of them.
//
// Preconditions: d.io is held (shared).
func (d *Device) span(sector, size uint64) (uint64, error) {
	if d.backend == nil {
		return 0, errEmpty
	}
	if size%SectorSize != 0 {
		return 0, fmt.Errorf("%w: %d bytes", errAlignment, size)
	}
	if size > math.MaxUint32-1 {
		return 0, fmt.Errorf("%w: %d bytes", errTooLarge, size)
	}
	n := size / SectorSize
	if sector > d.sectors || n > d.sectors-sector {
		return 0, fmt.Errorf("%w: %d sectors at %d, disk has %d", errRange, n, sector, d.sectors)
	}
	return sector * SectorSize, nil
}

func (d *Device) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}
