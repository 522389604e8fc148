package blk

import (
	"encoding/binary"
	"testing"

	"github.com/huskrt/husk/vmm/virtio"
)

// Fuzz input layout: a header, then the bytes of a 4 KiB stretch of guest
// memory the chain's buffers are cut from (zero-padded). Buffers may
// overlap, as a guest can make them.
//
//	[0]     bit 0: read-only disk; bit 1: the backend fails every call;
//	        bit 2: an empty slot (no backend)
//	[1]     number of buffers - 1 (mod 8)
//	[2]     how many of them are device-readable (mod buffers+1)
//	[3:35]  per buffer: offset, length (little-endian uint16 each; the
//	        offset mod 4 KiB, the length mod the room left)
const (
	fuzzHeader   = 3 + 8*4
	fuzzMemSize  = 4096
	fuzzDiskSect = 8
)

func fuzzChain(data []byte) (ro, failing, empty bool, c *virtio.Chain) {
	ro, failing, empty = data[0]&1 != 0, data[0]&2 != 0, data[0]&4 != 0
	n := int(data[1]%8) + 1
	mem := make([]byte, fuzzMemSize)
	copy(mem, data[fuzzHeader:])
	c = &virtio.Chain{Readable: int(data[2]) % (n + 1)}
	for i := range n {
		off := int(binary.LittleEndian.Uint16(data[3+4*i:])) % fuzzMemSize
		size := int(binary.LittleEndian.Uint16(data[5+4*i:])) % (fuzzMemSize - off + 1)
		c.Buffers = append(c.Buffers, virtio.Buffer{GPA: uint64(off), Data: mem[off : off+size : off+size]})
	}
	return ro, failing, empty, c
}

// fuzzSeed lays out a request: buffers placed one after another.
func fuzzSeed(flags byte, readable int, bufs ...[]byte) []byte {
	data := make([]byte, fuzzHeader)
	data[0], data[1], data[2] = flags, byte(len(bufs)-1), byte(readable)
	var mem []byte
	for i, b := range bufs {
		binary.LittleEndian.PutUint16(data[3+4*i:], uint16(len(mem)))
		binary.LittleEndian.PutUint16(data[5+4*i:], uint16(len(b)))
		mem = append(mem, b...)
	}
	return append(data, mem...)
}

// FuzzBlkRequest feeds arbitrary chains to the request parser and
// executor. Nothing may panic, the device must never touch the disk
// outside its sectors, never write a read-only disk, never claim more
// written bytes than the chain's writable buffers hold, and must leave a
// valid status wherever it reports one. An empty slot answers every read
// and write with IOERR.
func FuzzBlkRequest(f *testing.F) {
	f.Add(fuzzSeed(0, 1, header(typeIn, 2), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(0, 2, header(typeOut, 7), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(1, 2, header(typeOut, 0), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(0, 1, header(typeFlush, 0), []byte{0xff}))
	f.Add(fuzzSeed(2, 1, header(typeFlush, 0), []byte{0xff}))
	f.Add(fuzzSeed(0, 1, header(typeGetID, 0), make([]byte, IDBytes), []byte{0xff}))
	f.Add(fuzzSeed(0, 2, header(typeIn, 0)[:7], header(typeIn, 0)[7:], make([]byte, 2*SectorSize+1)))
	f.Add(fuzzSeed(0, 1, header(typeIn, fuzzDiskSect), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(0, 1, header(typeIn, ^uint64(0)), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(0, 1, header(typeIn, 0)))
	f.Add(fuzzSeed(0, 0, make([]byte, 3)))
	f.Add(fuzzSeed(4, 1, header(typeIn, 0), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(4, 2, header(typeOut, 0), make([]byte, SectorSize), []byte{0xff}))
	f.Add(fuzzSeed(5, 1, header(typeGetID, 0), make([]byte, IDBytes), []byte{0xff}))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzHeader {
			return
		}
		ro, failing, empty, c := fuzzChain(data)
		m := &memDisk{b: make([]byte, fuzzDiskSect*SectorSize), failing: failing}
		cfg := Config{Backend: m, Size: int64(len(m.b)), ReadOnly: ro, ID: "fuzz"}
		if empty {
			cfg = Config{ReadOnly: ro}
		}
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The request type as the device will read it (before it runs:
		// the buffers may overlap).
		var hdr [headerSize]byte
		got := 0
		for _, b := range c.ReadableBuffers() {
			got += copy(hdr[got:], b.Data)
		}
		typ := binary.LittleEndian.Uint32(hdr[:])
		used := d.handle(c)

		var writable uint64
		var status []byte
		for _, b := range c.WritableBuffers() {
			writable += uint64(len(b.Data))
			if len(b.Data) > 0 {
				status = b.Data[len(b.Data)-1:]
			}
		}
		if uint64(used) > writable {
			t.Fatalf("used length %d, but the chain has %d writable bytes", used, writable)
		}
		if used > 0 && status[0] > statusUnsupp {
			t.Fatalf("status %d", status[0])
		}
		if used == 0 && status != nil {
			t.Fatal("a chain with room for a status completed with length 0")
		}
		if m.outside {
			t.Fatal("the device accessed the disk outside its sectors")
		}
		if ro && m.writes > 0 {
			t.Fatal("the device wrote a read-only disk")
		}
		if empty && used > 0 && got == headerSize && (typ == typeIn || typ == typeOut) && status[0] != statusIOErr {
			t.Fatalf("an empty slot answered a type %d request with status %d", typ, status[0])
		}
	})
}
