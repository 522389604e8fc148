package virtio

import (
	"errors"
	"math"
	"testing"

	"github.com/huskrt/husk/vmm/memory"
)

// TestMalformedChainsAreCompletedWithZeroLength is the hostile-guest table:
// for each way a chain can be malformed, the walker must refuse it with the
// right error, complete it with used length 0, hand nothing to the device,
// and go on to serve the next, well-formed chain.
func TestMalformedChainsAreCompletedWithZeroLength(t *testing.T) {
	const size = 8
	const good = size - 1 // descriptor of the well-formed chain published after
	tests := []struct {
		name     string
		indirect bool
		head     uint16
		setup    func(d *testDriver)
		want     error
	}{
		{name: "head out of range", head: size, setup: func(*testDriver) {}, want: ErrHeadRange},
		{name: "head far out of range", head: math.MaxUint16, setup: func(*testDriver) {}, want: ErrHeadRange},
		{name: "next out of range", setup: func(d *testDriver) {
			d.setDesc(0, testData, 8, descFNext, size)
		}, want: ErrNextRange},
		{name: "self loop", setup: func(d *testDriver) {
			d.setDesc(0, testData, 8, descFNext, 0)
		}, want: ErrChainTooLong},
		{name: "two-descriptor loop", setup: func(d *testDriver) {
			d.setDesc(0, testData, 8, descFNext, 1)
			d.setDesc(1, testData, 8, descFNext, 0)
		}, want: ErrChainTooLong},
		{name: "buffer past the end of RAM", setup: func(d *testDriver) {
			d.setDesc(0, memory.MMIOHoleEnd+16*memory.PageSize-4, 8, 0, 0)
		}, want: ErrBufferRange},
		{name: "buffer straddles the MMIO hole", setup: func(d *testDriver) {
			d.setDesc(0, memory.MMIOHoleStart-4, 8, 0, 0)
		}, want: ErrBufferRange},
		{name: "buffer inside the MMIO hole", setup: func(d *testDriver) {
			d.setDesc(0, memory.MMIOHoleStart+0x1000, 1, 0, 0)
		}, want: ErrBufferRange},
		{name: "buffer address+length wraps 2^64", setup: func(d *testDriver) {
			d.setDesc(0, math.MaxUint64-7, 16, 0, 0)
		}, want: ErrBufferRange},
		{name: "buffer of 4 GiB-1", setup: func(d *testDriver) {
			d.setDesc(0, 0, math.MaxUint32, 0, 0)
		}, want: ErrBufferRange},
		{name: "readable after writable", setup: func(d *testDriver) {
			d.setDesc(0, testData, 8, descFWrite|descFNext, 1)
			d.setDesc(1, testData+8, 8, 0, 0)
		}, want: ErrDirection},
		{name: "indirect not negotiated", setup: func(d *testDriver) {
			d.setDescIn(testIndirect, 0, testData, 8, 0, 0)
			d.setDesc(0, testIndirect, descSize, descFIndirect, 0)
		}, want: ErrIndirectDisabled},
		{name: "nested indirect", indirect: true, setup: func(d *testDriver) {
			d.setDescIn(testIndirect, 0, testIndirect+0x100, descSize, descFIndirect, 0)
			d.setDesc(0, testIndirect, descSize, descFIndirect, 0)
		}, want: ErrIndirectNested},
		{name: "indirect with next", indirect: true, setup: func(d *testDriver) {
			d.setDescIn(testIndirect, 0, testData, 8, 0, 0)
			d.setDesc(0, testIndirect, descSize, descFIndirect|descFNext, 1)
			d.setDesc(1, testData, 8, 0, 0)
		}, want: ErrIndirectNext},
		{name: "indirect table of zero length", indirect: true, setup: func(d *testDriver) {
			d.setDesc(0, testIndirect, 0, descFIndirect, 0)
		}, want: ErrIndirectSize},
		{name: "indirect table length not a multiple of 16", indirect: true, setup: func(d *testDriver) {
			d.setDesc(0, testIndirect, descSize+1, descFIndirect, 0)
		}, want: ErrIndirectSize},
		{name: "indirect table longer than the queue", indirect: true, setup: func(d *testDriver) {
			d.setDesc(0, testIndirect, descSize*(size+1), descFIndirect, 0)
		}, want: ErrIndirectSize},
		{name: "indirect table of 4 GiB", indirect: true, setup: func(d *testDriver) {
			d.setDesc(0, testIndirect, math.MaxUint32&^15, descFIndirect, 0)
		}, want: ErrIndirectSize},
		{name: "indirect table past RAM", indirect: true, setup: func(d *testDriver) {
			d.setDesc(0, memory.MMIOHoleStart-descSize, 2*descSize, descFIndirect, 0)
		}, want: ErrIndirectRange},
		{name: "indirect table address wraps 2^64", indirect: true, setup: func(d *testDriver) {
			d.setDesc(0, math.MaxUint64-descSize+1, 2*descSize, descFIndirect, 0)
		}, want: ErrIndirectRange},
		{name: "indirect next out of the table", indirect: true, setup: func(d *testDriver) {
			// 2 entries; next 5 is < the queue size but not < the table's.
			d.setDescIn(testIndirect, 0, testData, 8, descFNext, 5)
			d.setDesc(0, testIndirect, 2*descSize, descFIndirect, 0)
		}, want: ErrNextRange},
		{name: "indirect loop", indirect: true, setup: func(d *testDriver) {
			d.setDescIn(testIndirect, 0, testData, 8, descFNext, 1)
			d.setDescIn(testIndirect, 1, testData, 8, descFNext, 0)
			d.setDesc(0, testIndirect, 2*descSize, descFIndirect, 0)
		}, want: ErrChainTooLong},
		{name: "direct then indirect longer than the queue in all", indirect: true, setup: func(d *testDriver) {
			for i := range uint16(size) {
				d.setDescIn(testIndirect, i, testData, 8, descFNext, i+1)
			}
			d.setDescIn(testIndirect, size-1, testData, 8, 0, 0)
			d.setDesc(0, testData, 8, descFNext, 1)
			d.setDesc(1, testIndirect, size*descSize, descFIndirect, 0)
		}, want: ErrChainTooLong},
		{name: "buffer in indirect table out of RAM", indirect: true, setup: func(d *testDriver) {
			d.setDescIn(testIndirect, 0, memory.MMIOHoleStart, 8, 0, 0)
			d.setDesc(0, testIndirect, descSize, descFIndirect, 0)
		}, want: ErrBufferRange},
		{name: "direction flip inside indirect table", indirect: true, setup: func(d *testDriver) {
			d.setDescIn(testIndirect, 0, testData, 8, descFWrite|descFNext, 1)
			d.setDescIn(testIndirect, 1, testData, 8, 0, 0)
			d.setDesc(0, testIndirect, 2*descSize, descFIndirect, 0)
		}, want: ErrDirection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDriver(t, size, tt.indirect)
			var reported []error
			d.cfg.OnMalformed = func(head uint16, err error) {
				if head != tt.head {
					t.Errorf("OnMalformed head = %d, want %d", head, tt.head)
				}
				reported = append(reported, err)
			}
			q := d.queue()
			tt.setup(d)
			d.setDesc(good, testData+0x800, 4, descFWrite, 0)
			d.publish(tt.head, good)

			c, ok, err := q.Pop()
			if err != nil || !ok {
				t.Fatalf("Pop = %v, %v; want the well-formed chain after the bad one", ok, err)
			}
			if c.Head != good {
				t.Fatalf("Pop returned head %d, want %d (the bad chain reached the device)", c.Head, good)
			}
			if len(reported) != 1 || !errors.Is(reported[0], tt.want) {
				t.Fatalf("reported %v, want one %v", reported, tt.want)
			}
			if idx, id, n := d.used(0); idx != 1 || id != uint32(tt.head) || n != 0 {
				t.Fatalf("used ring = idx %d {id %d, len %d}, want idx 1 {%d, 0}", idx, id, n, tt.head)
			}
			if err := q.Push(c.Head, 4); err != nil {
				t.Fatalf("Push after a malformed chain: %v", err)
			}
			if s := q.Stats(); s.Chains != 1 || s.Malformed != 1 {
				t.Fatalf("stats = %+v", s)
			}
		})
	}
}

func TestAvailWindowBreaksTheQueue(t *testing.T) {
	const size = 8
	tests := []struct {
		name   string
		idx    uint16
		broken bool
	}{
		{"exactly size pending", size, false},
		{"size+1 pending", size + 1, true},
		{"index behind last seen", math.MaxUint16, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDriver(t, size, false)
			q := d.queue()
			d.setDesc(0, testData, 8, 0, 0) // every slot holds head 0
			d.setAvailIdx(tt.idx)
			_, ok, err := q.Pop()
			if !tt.broken {
				if err != nil || !ok {
					t.Fatalf("Pop = %v, %v", ok, err)
				}
				return
			}
			if !errors.Is(err, ErrAvailWindow) || !errors.Is(err, ErrQueueBroken) || ok {
				t.Fatalf("Pop = %v, %v; want ErrAvailWindow", ok, err)
			}
			// Sticky: the queue stays broken, pushes fail, the driver is
			// interrupted so it can notice and reset.
			d.setAvailIdx(1)
			if _, _, err := q.Pop(); !errors.Is(err, ErrQueueBroken) {
				t.Fatalf("second Pop = %v", err)
			}
			if err := q.Push(0, 0); !errors.Is(err, ErrQueueBroken) {
				t.Fatalf("Push = %v", err)
			}
			if !q.NeedsInterrupt() || !errors.Is(q.Err(), ErrAvailWindow) {
				t.Fatal("broken queue: want NeedsInterrupt and Err")
			}
		})
	}
}

func TestPopBoundsWorkPerCall(t *testing.T) {
	// A ring full of malformed chains: one Pop completes at most Size of
	// them and returns, so the device goroutine is never held.
	const size = 4
	d := newTestDriver(t, size, false)
	q := d.queue()
	d.publish(size, size, size, size)
	if _, ok, err := q.Pop(); ok || err != nil {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	if s := q.Stats(); s.Malformed != size {
		t.Fatalf("malformed = %d, want %d", s.Malformed, size)
	}
	if idx, _, _ := d.used(0); idx != size {
		t.Fatalf("used idx = %d, want %d", idx, size)
	}
}

func TestGuestRewritingTheRingCannotEscapeRAM(t *testing.T) {
	// The descriptor is copied once: changing it after Pop cannot change
	// the buffer the device was given.
	d := newTestDriver(t, 4, false)
	q := d.queue()
	d.setDesc(0, testData, 8, descFWrite, 0)
	d.publish(0)
	c, ok, err := q.Pop()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	d.setDesc(0, math.MaxUint64-3, math.MaxUint32, descFWrite, 0)
	if b := c.WritableBuffers()[0]; b.GPA != testData || len(b.Data) != 8 || cap(b.Data) != 8 {
		t.Fatalf("buffer changed under the device: %#x len %d cap %d", b.GPA, len(b.Data), cap(b.Data))
	}
}

func TestDrainBoundsWorkPerCall(t *testing.T) {
	// A driver that publishes a new chain every time the device serves
	// one (another vCPU bumping the available index) gets Size chains per
	// Drain, not a device goroutine forever.
	const size = 4
	d := newTestDriver(t, size, false)
	q := d.queue()
	d.setDesc(0, testData, 8, descFWrite, 0)
	d.publish(0)
	served := 0
	err := q.Drain(func(c *Chain) uint32 {
		served++
		d.publish(0)
		return 8
	})
	if err != nil || served != size {
		t.Fatalf("Drain served %d chains (err %v), want %d", served, err, size)
	}
	if idx, id, n := d.used(size - 1); idx != size || id != 0 || n != 8 {
		t.Fatalf("used idx %d, last element (%d, %d)", idx, id, n)
	}
	// The one published during the last serve is left for the next
	// notification.
	if err := q.Drain(func(*Chain) uint32 { return 0 }); err != nil {
		t.Fatal(err)
	}
	if idx, _, _ := d.used(0); idx != size+1 {
		t.Fatalf("used idx after a second Drain = %d", idx)
	}
}
