package mmio

import (
	"encoding/binary"
	"testing"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/virtio"
)

// Fuzz input: the first fuzzImage bytes are copied to guest physical 0
// (rings the driver may point at), the rest is a program of register
// accesses, 7 bytes each:
//
//	[0]    bit 0: write; bits 1-2: width 1, 2, 4 or 8 bytes
//	[1:3]  offset in the window (little-endian, mod 0x200)
//	[3:7]  value written (little-endian; repeated for 8-byte writes)
const (
	fuzzImage = 512
	fuzzOp    = 7
)

// fuzzInit is the driver's normal start-up as a program: acknowledge,
// features, queue 0 at 0x0/0x80/0x100 with 8 entries, DRIVER_OK, notify.
func fuzzInit() []byte {
	var p []byte
	op := func(off uint16, v uint32) {
		p = append(p, 1|2<<1)
		p = binary.LittleEndian.AppendUint16(p, off)
		p = binary.LittleEndian.AppendUint32(p, v)
	}
	op(regStatus, 3)
	op(regDriverFeatSel, 1)
	op(regDriverFeatures, 1)
	op(regStatus, 3|statusFeaturesOK)
	op(regQueueNum, 8)
	op(regQueueDescLow, 0)
	op(regQueueDriverLow, 0x80)
	op(regQueueDeviceLow, 0x100)
	op(regQueueReady, 1)
	op(regStatus, 3|statusFeaturesOK|statusDriverOK)
	op(regQueueNotify, 0)
	return p
}

// FuzzTransport drives the register window with arbitrary accesses. It
// must never panic or fail a write, and the status it reports must stay
// consistent: DRIVER_OK never without FEATURES_OK, and a queue reads ready
// only if the device can use it.
func FuzzTransport(f *testing.F) {
	img := make([]byte, fuzzImage)
	binary.LittleEndian.PutUint64(img[0:], 0x400)  // descriptor 0: a buffer
	binary.LittleEndian.PutUint32(img[8:], 16)     // of 16 bytes,
	binary.LittleEndian.PutUint16(img[12:], 2)     // device-writable
	binary.LittleEndian.PutUint16(img[0x80+2:], 1) // avail idx 1
	f.Add(append(img, fuzzInit()...))
	f.Add(append(make([]byte, fuzzImage), fuzzInit()[:4*fuzzOp]...))
	f.Add(append(make([]byte, fuzzImage), 1|2<<1, 0x70, 0, 0xff, 0xff, 0xff, 0xff))

	mem, err := memory.New(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	ram, _ := mem.Slice(0, 1<<20)

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzImage {
			return
		}
		clear(ram)
		copy(ram, data[:fuzzImage])
		dev := newFakeDevice()
		tr, err := New(Config{Mem: mem, Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		prog := data[fuzzImage:]
		for ; len(prog) >= fuzzOp; prog = prog[fuzzOp:] {
			width := 1 << ((prog[0] >> 1) & 3)
			off := uint64(binary.LittleEndian.Uint16(prog[1:])) % 0x200
			b := make([]byte, 8)
			binary.LittleEndian.PutUint32(b, binary.LittleEndian.Uint32(prog[3:]))
			copy(b[4:], b[:4])
			if prog[0]&1 != 0 {
				if err := tr.Write(off, b[:width]); err != nil {
					t.Fatalf("write %#x: %v", off, err)
				}
			} else {
				tr.Read(off, b[:width])
			}
			st := tr.status.Load()
			if st&statusDriverOK != 0 && st&statusFeaturesOK == 0 {
				t.Fatalf("status %#x: DRIVER_OK without FEATURES_OK", st)
			}
			tr.mu.Lock()
			for i, q := range tr.queues {
				q.mu.Lock()
				live := q.vq != nil
				q.mu.Unlock()
				if q.ready != live {
					t.Fatalf("queue %d: ready %v but live %v", i, q.ready, live)
				}
			}
			tr.mu.Unlock()
		}
		tr.Do(0, func(*virtio.Queue) {})
	})
}
