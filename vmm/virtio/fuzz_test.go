package virtio

import (
	"encoding/binary"
	"testing"

	"github.com/huskrt/husk/vmm/memory"
)

// Fuzz input layout: a 4-byte header, then the image of guest RAM from
// guest physical 0 (the rest of RAM is zero).
//
//	[0]   log2 of the queue size (mod 9: sizes 1..256)
//	[1]   bit 0: VIRTIO_F_RING_INDIRECT_DESC negotiated
//	[2:4] little-endian starting index of both rings (exercises wrap-around)
//
// The descriptor table is at 0, the available ring right after it, the used
// ring after that (4-aligned): the fuzzer controls every byte the walker
// reads.
const (
	fuzzHeader = 4
	fuzzRAM    = 16 * memory.PageSize
)

func fuzzLayout(data []byte) (cfg Config, start uint16, image []byte) {
	size := uint16(1) << (data[0] % 9)
	cfg = Config{
		Size:      size,
		DescTable: 0,
		AvailRing: descSize * uint64(size),
		Indirect:  data[1]&1 != 0,
	}
	cfg.UsedRing = (cfg.AvailRing + ringHeaderSize + 2*uint64(size) + 3) &^ 3
	return cfg, binary.LittleEndian.Uint16(data[2:4]), data[fuzzHeader:]
}

// fuzzSeed builds an input from a driver's view: header fields and the
// descriptors and heads to place.
func fuzzSeed(sizeLog2, flags byte, start uint16, descs []desc, heads []uint16) []byte {
	data := []byte{sizeLog2, flags, byte(start), byte(start >> 8)}
	cfg, _, _ := fuzzLayout(data)
	img := make([]byte, cfg.UsedRing+ringHeaderSize+usedElemSize*uint64(cfg.Size))
	for i, d := range descs {
		b := img[descSize*i:]
		binary.LittleEndian.PutUint64(b, d.addr)
		binary.LittleEndian.PutUint32(b[8:], d.len)
		binary.LittleEndian.PutUint16(b[12:], d.flags)
		binary.LittleEndian.PutUint16(b[14:], d.next)
	}
	for i, h := range heads {
		slot := (start + uint16(i)) % cfg.Size
		binary.LittleEndian.PutUint16(img[cfg.AvailRing+ringHeaderSize+2*uint64(slot):], h)
	}
	binary.LittleEndian.PutUint16(img[cfg.AvailRing+2:], start+uint16(len(heads)))
	return append(data, img...)
}

// FuzzQueue feeds arbitrary ring contents to the walker. It must never
// panic, every chain it hands out must respect the invariants a device
// relies on, and every entry it consumes must be completed.
func FuzzQueue(f *testing.F) {
	f.Add(fuzzSeed(3, 0, 0, []desc{{0x4000, 64, descFNext, 1}, {0x5000, 128, descFWrite, 0}}, []uint16{0}))
	f.Add(fuzzSeed(3, 1, 0, []desc{{0x6000, 2 * descSize, descFIndirect, 0}}, []uint16{0}))
	f.Add(fuzzSeed(2, 0, 0xfffe, []desc{{0x4000, 8, descFNext, 0}}, []uint16{0, 9, 1}))
	f.Add(fuzzSeed(4, 1, 7, []desc{{0x4000, 8, descFWrite | descFNext, 1}, {0x4000, 8, 0, 0}}, []uint16{0, 1, 0}))

	mem, err := memory.New(fuzzRAM)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	ram, err := mem.Slice(0, fuzzRAM)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzHeader {
			return
		}
		cfg, start, image := fuzzLayout(data)
		clear(ram)
		copy(ram, image)
		q, err := New(mem, cfg)
		if err != nil {
			t.Fatalf("New with a fixed in-RAM layout: %v", err)
		}
		q.lastAvail, q.nextUsed = start, start

		popped := 0
		for range 2 * int(cfg.Size) {
			c, ok, err := q.Pop()
			if err != nil || !ok {
				break
			}
			popped++
			checkChain(t, mem, cfg, c)
			var written uint64
			for _, b := range c.WritableBuffers() {
				written += uint64(len(b.Data))
			}
			if err := q.Push(c.Head, uint32(min(written, 1<<32-1))); err != nil {
				t.Fatalf("Push: %v", err)
			}
		}
		s := q.Stats()
		if s.Chains != uint64(popped) {
			t.Fatalf("stats count %d chains, Pop returned %d", s.Chains, popped)
		}
		consumed := q.lastAvail - start
		if uint64(consumed) != s.Chains+s.Malformed {
			t.Fatalf("consumed %d entries, completed %d + %d", consumed, s.Chains, s.Malformed)
		}
		if consumed > cfg.Size {
			t.Fatalf("consumed %d entries from a ring of %d", consumed, cfg.Size)
		}
		if used, _ := mem.ReadUint16(cfg.UsedRing + 2); q.Err() == nil && consumed > 0 && used != q.lastAvail {
			t.Fatalf("used idx %d, want %d: a consumed entry was not completed", used, q.lastAvail)
		}
	})
}

func checkChain(t *testing.T, mem *memory.Memory, cfg Config, c Chain) {
	t.Helper()
	if c.Head >= cfg.Size {
		t.Fatalf("head %d >= size %d", c.Head, cfg.Size)
	}
	if len(c.Buffers) == 0 || len(c.Buffers) > int(cfg.Size) {
		t.Fatalf("%d buffers for a queue of %d", len(c.Buffers), cfg.Size)
	}
	if c.Readable < 0 || c.Readable > len(c.Buffers) {
		t.Fatalf("readable %d of %d", c.Readable, len(c.Buffers))
	}
	for i, b := range c.Buffers {
		if !mem.Contains(b.GPA, uint64(len(b.Data))) || cap(b.Data) != len(b.Data) {
			t.Fatalf("buffer %d [%#x, +%#x) cap %d escapes RAM", i, b.GPA, len(b.Data), cap(b.Data))
		}
		want, _ := mem.Slice(b.GPA, uint64(len(b.Data)))
		if len(want) > 0 && &want[0] != &b.Data[0] {
			t.Fatalf("buffer %d does not alias guest %#x", i, b.GPA)
		}
	}
}
