package virtio

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/huskrt/husk/vmm/memory"
)

func TestNewValidatesPlacement(t *testing.T) {
	mem := newTestMemory(t, testRAM)
	good := Config{Size: 256, DescTable: testDesc, AvailRing: testAvail, UsedRing: testUsed}
	tests := []struct {
		name string
		edit func(*Config)
		want error
	}{
		{"good", func(*Config) {}, nil},
		{"largest size", func(c *Config) {
			c.Size = MaxQueueSize
			c.DescTable = 0x100000
			c.AvailRing = 0x200000
			c.UsedRing = 0x300000
		}, nil},
		{"size zero", func(c *Config) { c.Size = 0 }, ErrQueueSize},
		{"size not a power of two", func(c *Config) { c.Size = 3 }, ErrQueueSize},
		{"size too big", func(c *Config) { c.Size = math.MaxUint16 }, ErrQueueSize},
		{"descriptor table misaligned", func(c *Config) { c.DescTable = testDesc + 8 }, ErrRingAlignment},
		{"available ring misaligned", func(c *Config) { c.AvailRing = testAvail + 1 }, ErrRingAlignment},
		{"used ring misaligned", func(c *Config) { c.UsedRing = testUsed + 2 }, ErrRingAlignment},
		{"descriptor table past RAM", func(c *Config) { c.DescTable = memory.MMIOHoleEnd + 16*memory.PageSize - 16 }, ErrRingPlacement},
		{"descriptor table straddles the MMIO hole", func(c *Config) { c.DescTable = memory.MMIOHoleStart - 16 }, ErrRingPlacement},
		{"available ring in the MMIO hole", func(c *Config) { c.AvailRing = memory.MMIOHoleStart }, ErrRingPlacement},
		{"used ring wraps 2^64", func(c *Config) { c.UsedRing = math.MaxUint64 - 3 }, ErrRingPlacement},
		{"available ring wraps 2^64", func(c *Config) { c.AvailRing = math.MaxUint64 - 1 }, ErrRingPlacement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := New(mem, cfg)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPopReturnsReadableThenWritable(t *testing.T) {
	d := newTestDriver(t, 8, false)
	q := d.queue()
	if _, ok, err := q.Pop(); ok || err != nil {
		t.Fatalf("Pop on an empty queue = %v, %v", ok, err)
	}
	if err := d.mem.WriteAt([]byte("request"), testData); err != nil {
		t.Fatal(err)
	}
	d.setDesc(5, testData, 7, descFNext, 2)
	d.setDesc(2, testData+0x100, 16, descFWrite|descFNext, 7)
	d.setDesc(7, testData+0x200, 4, descFWrite, 0)
	d.publish(5)

	c, ok, err := q.Pop()
	if err != nil || !ok {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	if c.Head != 5 || len(c.Buffers) != 3 || c.Readable != 1 {
		t.Fatalf("chain = head %d, %d buffers, %d readable", c.Head, len(c.Buffers), c.Readable)
	}
	if r := c.ReadableBuffers(); !bytes.Equal(r[0].Data, []byte("request")) {
		t.Fatalf("readable buffer = %q", r[0].Data)
	}
	w := c.WritableBuffers()
	if w[0].GPA != testData+0x100 || len(w[0].Data) != 16 || w[1].GPA != testData+0x200 || len(w[1].Data) != 4 {
		t.Fatalf("writable buffers = %+v", w)
	}
	copy(w[1].Data, "done")
	if err := q.Push(c.Head, 4); err != nil {
		t.Fatal(err)
	}
	if idx, id, n := d.used(0); idx != 1 || id != 5 || n != 4 {
		t.Fatalf("used ring = idx %d {id %d, len %d}, want idx 1 {5, 4}", idx, id, n)
	}
	if got, _ := d.mem.ReadUint32(testData + 0x200); got != 0x656e6f64 { // "done"
		t.Fatalf("guest buffer = %#x", got)
	}
	if s := q.Stats(); s.Chains != 1 || s.Malformed != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPopFollowsIndirectTable(t *testing.T) {
	d := newTestDriver(t, 8, true)
	q := d.queue()
	d.setDescIn(testIndirect, 0, testData, 10, descFNext, 1)
	d.setDescIn(testIndirect, 1, testData+0x10, 20, descFNext, 2)
	d.setDescIn(testIndirect, 2, testData+0x40, 30, descFWrite, 0)
	d.setDesc(3, testIndirect, 3*descSize, descFIndirect|descFWrite, 0) // WRITE is ignored on it
	d.publish(3)
	c, ok, err := q.Pop()
	if err != nil || !ok {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	if c.Head != 3 || len(c.Buffers) != 3 || c.Readable != 2 || len(c.Buffers[2].Data) != 30 {
		t.Fatalf("chain = %+v", c)
	}
}

func TestChainOfExactlyQueueSizeIsAccepted(t *testing.T) {
	const size = 4
	d := newTestDriver(t, size, false)
	q := d.queue()
	for i := range uint16(size) {
		flags := uint16(descFNext)
		if i == size-1 {
			flags = 0
		}
		d.setDesc(i, testData+uint64(i)*0x10, 0x10, flags, i+1)
	}
	d.publish(0)
	if c, ok, err := q.Pop(); err != nil || !ok || len(c.Buffers) != size {
		t.Fatalf("Pop = %d buffers, %v, %v", len(c.Buffers), ok, err)
	}
}

func TestZeroLengthBufferInsideRAMIsAccepted(t *testing.T) {
	d := newTestDriver(t, 4, false)
	q := d.queue()
	d.setDesc(0, testData, 0, 0, 0)
	d.publish(0)
	if c, ok, err := q.Pop(); err != nil || !ok || len(c.Buffers) != 1 || len(c.Buffers[0].Data) != 0 {
		t.Fatalf("Pop = %+v, %v, %v", c, ok, err)
	}
}

func TestIndexesWrapAt65536(t *testing.T) {
	d := newTestDriver(t, 4, false)
	q := d.queue()
	// Start both sides just below the wrap, as after 65534 requests.
	q.lastAvail, q.nextUsed, d.availIdx = 65534, 65534, 65534
	d.setDesc(0, testData, 8, 0, 0)
	d.publish(0, 0, 0, 0) // avail idx wraps to 2
	for i := range 4 {
		c, ok, err := q.Pop()
		if err != nil || !ok {
			t.Fatalf("Pop %d = %v, %v", i, ok, err)
		}
		if err := q.Push(c.Head, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := q.Pop(); ok || err != nil {
		t.Fatalf("fifth Pop = %v, %v", ok, err)
	}
	if idx, _, _ := d.used(0); idx != 2 {
		t.Fatalf("used idx = %d, want 2", idx)
	}
}

func TestNeedsInterruptHonoursNoInterruptFlag(t *testing.T) {
	d := newTestDriver(t, 4, false)
	q := d.queue()
	if !q.NeedsInterrupt() {
		t.Fatal("NeedsInterrupt = false with flags 0")
	}
	if err := d.mem.WriteUint16(testAvail, availFNoInterrupt); err != nil {
		t.Fatal(err)
	}
	if q.NeedsInterrupt() {
		t.Fatal("NeedsInterrupt = true with VIRTQ_AVAIL_F_NO_INTERRUPT")
	}
}
