package blk

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/huskrt/husk/vmm/virtio"
)

func header(typ uint32, sector uint64) []byte {
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(h, typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

// chain builds a chain from readable and writable buffers.
func chain(readable, writable [][]byte) *virtio.Chain {
	c := &virtio.Chain{Readable: len(readable)}
	for _, b := range append(append([][]byte(nil), readable...), writable...) {
		c.Buffers = append(c.Buffers, virtio.Buffer{Data: b})
	}
	return c
}

func newDisk(t *testing.T, sectors int, ro bool) (*Device, *memDisk) {
	t.Helper()
	m := &memDisk{b: make([]byte, sectors*SectorSize)}
	for i := range m.b {
		m.b[i] = byte(i / SectorSize)
	}
	d, err := New(Config{Backend: m, Size: int64(len(m.b)), ReadOnly: ro, ID: "husk-disk-0"})
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

func TestRequests(t *testing.T) {
	sector := func(n byte) []byte { return bytes.Repeat([]byte{n}, SectorSize) }
	tests := []struct {
		name     string
		ro       bool
		readable [][]byte
		writable [][]byte
		status   byte   // 0xff: no status written
		used     uint32 // the used length
		check    func(t *testing.T, c *virtio.Chain, m *memDisk)
	}{
		{
			name: "read two sectors into two buffers", readable: [][]byte{header(typeIn, 3)},
			writable: [][]byte{make([]byte, SectorSize), make([]byte, SectorSize), {0xff}},
			status:   statusOK, used: 2*SectorSize + 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				w := c.WritableBuffers()
				if !bytes.Equal(w[0].Data, sector(3)) || !bytes.Equal(w[1].Data, sector(4)) {
					t.Error("read returned the wrong sectors")
				}
			},
		},
		{
			name: "status in the data buffer's last byte", readable: [][]byte{header(typeIn, 1)},
			writable: [][]byte{make([]byte, SectorSize+1)}, status: statusOK, used: SectorSize + 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				if !bytes.Equal(c.WritableBuffers()[0].Data[:SectorSize], sector(1)) {
					t.Error("wrong data")
				}
			},
		},
		{
			name: "header split across buffers", readable: [][]byte{header(typeIn, 2)[:5], header(typeIn, 2)[5:]},
			writable: [][]byte{make([]byte, SectorSize), {0}}, status: statusOK, used: SectorSize + 1,
		},
		{
			name: "empty trailing writable buffers are skipped", readable: [][]byte{header(typeFlush, 0)},
			writable: [][]byte{{0xff}, {}, {}}, status: statusOK, used: 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				if m.syncs != 1 {
					t.Errorf("%d syncs", m.syncs)
				}
			},
		},
		{
			name: "write with data after the header in the same buffer", readable: [][]byte{append(header(typeOut, 5), sector(0xaa)...)},
			writable: [][]byte{{0xff}}, status: statusOK, used: 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				if !bytes.Equal(m.b[5*SectorSize:6*SectorSize], sector(0xaa)) || !bytes.Equal(m.b[6*SectorSize:7*SectorSize], sector(6)) {
					t.Error("write landed in the wrong place")
				}
			},
		},
		{
			name: "write to a read-only disk", ro: true, readable: [][]byte{header(typeOut, 0), sector(1)},
			writable: [][]byte{{0xff}}, status: statusIOErr, used: 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				if m.writes != 0 {
					t.Error("read-only disk written")
				}
			},
		},
		{
			name: "get id", readable: [][]byte{header(typeGetID, 0)},
			writable: [][]byte{make([]byte, IDBytes), {0xff}}, status: statusOK, used: IDBytes + 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				if got := c.WritableBuffers()[0].Data; string(got) != "husk-disk-0\x00\x00\x00\x00\x00\x00\x00\x00\x00" {
					t.Errorf("id %q", got)
				}
			},
		},
		{
			name: "get id into a short buffer", readable: [][]byte{header(typeGetID, 0)},
			writable: [][]byte{make([]byte, 4), {0xff}}, status: statusOK, used: 5,
		},
		{
			name: "read past the end", readable: [][]byte{header(typeIn, 15)},
			writable: [][]byte{make([]byte, 2*SectorSize), {0xff}}, status: statusIOErr, used: 1,
		},
		{
			name: "sector near 2^64", readable: [][]byte{header(typeIn, ^uint64(0)-1)},
			writable: [][]byte{make([]byte, SectorSize), {0xff}}, status: statusIOErr, used: 1,
		},
		{
			name: "write sector overflowing the byte offset", readable: [][]byte{header(typeOut, 1<<55), sector(1)},
			writable: [][]byte{{0xff}}, status: statusIOErr, used: 1,
			check: func(t *testing.T, c *virtio.Chain, m *memDisk) {
				if m.writes != 0 {
					t.Error("backend written")
				}
			},
		},
		{
			name: "partial sector", readable: [][]byte{header(typeIn, 0)},
			writable: [][]byte{make([]byte, 100), {0xff}}, status: statusIOErr, used: 1,
		},
		{
			name: "unknown type", readable: [][]byte{header(11, 0)}, // DISCARD, not offered
			writable: [][]byte{{0xff}}, status: statusUnsupp, used: 1,
		},
		{
			name: "short header", readable: [][]byte{header(typeIn, 0)[:15]},
			writable: [][]byte{make([]byte, SectorSize), {0xff}}, status: statusIOErr, used: 1,
		},
		{
			name: "no status byte", readable: [][]byte{header(typeIn, 0)},
			writable: nil, status: 0xff, used: 0,
		},
		{
			name: "only empty writable buffers", readable: [][]byte{header(typeIn, 0)},
			writable: [][]byte{{}, {}}, status: 0xff, used: 0,
		},
		{
			name: "zero-length read of the last sector boundary", readable: [][]byte{header(typeIn, 16)},
			writable: [][]byte{{0xff}}, status: statusOK, used: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, m := newDisk(t, 16, tt.ro)
			c := chain(tt.readable, tt.writable)
			used := d.handle(c)
			if used != tt.used {
				t.Errorf("used length %d, want %d", used, tt.used)
			}
			if tt.status != 0xff {
				w := c.WritableBuffers()
				last := w[len(w)-1].Data
				for i := len(w) - 1; len(last) == 0; i-- {
					last = w[i-1].Data
				}
				if got := last[len(last)-1]; got != tt.status {
					t.Errorf("status %d, want %d", got, tt.status)
				}
			}
			if tt.check != nil {
				tt.check(t, c, m)
			}
		})
	}
}

func TestBackendErrorsBecomeIOErr(t *testing.T) {
	for _, typ := range []uint32{typeIn, typeOut, typeFlush} {
		d, m := newDisk(t, 4, false)
		m.failing = true
		st := []byte{0xff}
		c := chain([][]byte{header(typ, 0), make([]byte, SectorSize)}, [][]byte{st})
		if typ == typeIn {
			c = chain([][]byte{header(typ, 0)}, [][]byte{make([]byte, SectorSize), st})
		}
		if used := d.handle(c); used != 1 || st[0] != statusIOErr {
			t.Errorf("type %d on a failing disk: used %d, status %d", typ, used, st[0])
		}
		if d.Stats().Errors != 1 {
			t.Errorf("type %d: errors counted %d", typ, d.Stats().Errors)
		}
	}
}

func TestConfigSpace(t *testing.T) {
	d, _ := newDisk(t, 16, true)
	b := make([]byte, 8)
	d.ReadConfig(0, b)
	if binary.LittleEndian.Uint64(b) != 16 {
		t.Errorf("capacity %d sectors, want 16", binary.LittleEndian.Uint64(b))
	}
	d.ReadConfig(12, b[:4])
	if binary.LittleEndian.Uint32(b) != QueueSize-2 {
		t.Errorf("seg_max %d", binary.LittleEndian.Uint32(b))
	}
	for _, off := range []uint64{configSize, 1 << 20, ^uint64(0)} {
		b := []byte{1, 2, 3, 4}
		d.ReadConfig(off, b)
		if !bytes.Equal(b, make([]byte, 4)) {
			t.Errorf("config at %#x = % x, want zeros", off, b)
		}
	}
	if f := d.Features(); f&featureRO == 0 || f&featureFlush == 0 {
		t.Errorf("read-only disk features %#x", f)
	}
	if _, err := New(Config{Backend: &memDisk{}, ID: "an id that is far too long for virtio"}); err == nil {
		t.Error("long id accepted")
	}
}
