package blk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/virtio/mmio"
)

// patternDisk is a Backend whose every byte is fill. It notices any use
// after Close, which the device must never make.
type patternDisk struct {
	fill    byte
	size    int64
	syncs   atomic.Int32
	closes  atomic.Int32
	late    atomic.Bool // used after Close
	syncErr error
}

func (p *patternDisk) ReadAt(b []byte, off int64) (int, error) {
	p.check()
	runtime.Gosched() // let a swap try to get in between two buffers
	for i := range b {
		b[i] = p.fill
	}
	return len(b), nil
}

func (p *patternDisk) WriteAt(b []byte, off int64) (int, error) {
	p.check()
	return len(b), nil
}

func (p *patternDisk) Sync() error {
	p.check()
	p.syncs.Add(1)
	return p.syncErr
}

func (p *patternDisk) Close() error {
	p.check()
	p.closes.Add(1)
	return nil
}

func (p *patternDisk) check() {
	if p.closes.Load() != 0 {
		p.late.Store(true)
	}
}

// do serves one request built from readable and writable buffers and
// returns the status byte (0xff if none was written) and the used length.
func do(d *Device, readable, writable [][]byte) (byte, uint32) {
	st := []byte{0xff}
	used := d.handle(chain(readable, append(writable, st)))
	return st[0], used
}

func configCapacity(d *Device) uint64 {
	b := make([]byte, 8)
	d.ReadConfig(0, b)
	return binary.LittleEndian.Uint64(b)
}

// TestEmptySlot: a device without a backend has capacity 0 and an empty
// id, refuses every read and write with IOERR (even of zero sectors),
// flushes nothing successfully, and keeps its read-only-ness.
func TestEmptySlot(t *testing.T) {
	tests := []struct {
		name     string
		ro       bool
		readable [][]byte
		writable [][]byte
		status   byte
		used     uint32
	}{
		{"read", true, [][]byte{header(typeIn, 0)}, [][]byte{make([]byte, SectorSize)}, statusIOErr, 1},
		{"read of zero sectors", true, [][]byte{header(typeIn, 0)}, nil, statusIOErr, 1},
		{"read near 2^64", false, [][]byte{header(typeIn, ^uint64(0))}, [][]byte{make([]byte, SectorSize)}, statusIOErr, 1},
		{"write to a writable slot", false, [][]byte{header(typeOut, 0), make([]byte, SectorSize)}, nil, statusIOErr, 1},
		{"write to a read-only slot", true, [][]byte{header(typeOut, 0), make([]byte, SectorSize)}, nil, statusIOErr, 1},
		{"write of zero sectors", false, [][]byte{header(typeOut, 0)}, nil, statusIOErr, 1},
		{"flush", false, [][]byte{header(typeFlush, 0)}, nil, statusOK, 1},
		{"get id", true, [][]byte{header(typeGetID, 0)}, [][]byte{bytes.Repeat([]byte{0xee}, IDBytes)}, statusOK, IDBytes + 1},
		{"unsupported", true, [][]byte{header(11, 0)}, nil, statusUnsupp, 1},
		{"short header", true, [][]byte{header(typeIn, 0)[:8]}, nil, statusIOErr, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Config{ReadOnly: tt.ro})
			if err != nil {
				t.Fatal(err)
			}
			status, used := do(d, tt.readable, tt.writable)
			if status != tt.status || used != tt.used {
				t.Errorf("status %d used %d, want %d and %d", status, used, tt.status, tt.used)
			}
			if tt.name == "get id" && !bytes.Equal(tt.writable[0], make([]byte, IDBytes)) {
				t.Errorf("id % x, want all NUL", tt.writable[0])
			}
			if c := configCapacity(d); c != 0 {
				t.Errorf("capacity %d", c)
			}
			if ro := d.Features()&featureRO != 0; ro != tt.ro {
				t.Errorf("VIRTIO_BLK_F_RO offered %v, want %v", ro, tt.ro)
			}
			if s := d.Stats(); !s.Empty || s.ID != "" || d.ID() != "" || !d.Empty() {
				t.Errorf("stats %+v, id %q", s, d.ID())
			}
		})
	}
	for _, cfg := range []Config{{Size: SectorSize}, {ID: "x"}} {
		if _, err := New(cfg); !errors.Is(err, ErrNoBackend) {
			t.Errorf("New(%+v) = %v, want ErrNoBackend", cfg, err)
		}
	}
}

// TestSetBackend: each move between empty and full changes capacity, id
// and counters, tells the transport once, and retires the old backend
// (synced if writable, closed) exactly once; refused moves change nothing
// and leave the backend with the caller.
func TestSetBackend(t *testing.T) {
	type step struct {
		set     *patternDisk // nil: Clear
		ro      bool         // the new backend's read-only-ness
		id      string
		wantErr error
		// what the device shows afterwards
		capacity uint64
		changes  int
	}
	a := func() *patternDisk { return &patternDisk{fill: 0xaa, size: 8 * SectorSize} }
	b := func() *patternDisk { return &patternDisk{fill: 0xbb, size: 3*SectorSize + 100} }
	tests := []struct {
		name  string
		ro    bool // the device's
		steps []step
	}{
		{"attach then detach", true, []step{
			{set: a(), ro: true, id: "a", capacity: 8, changes: 1},
			{set: nil, capacity: 0, changes: 2},
		}},
		{"replace a writable backend", false, []step{
			{set: a(), id: "a", capacity: 8, changes: 1},
			{set: b(), id: "b", capacity: 3, changes: 2},
			{set: nil, capacity: 0, changes: 3},
		}},
		{"clear an empty slot", true, []step{
			{set: nil, capacity: 0, changes: 0},
		}},
		{"read-write backend in a read-only slot", true, []step{
			{set: a(), ro: false, id: "a", wantErr: ErrReadOnlyMismatch},
		}},
		{"read-only backend in a writable slot", false, []step{
			{set: a(), ro: true, id: "a", wantErr: ErrReadOnlyMismatch},
		}},
		{"id too long", true, []step{
			{set: a(), ro: true, id: "an id longer than twenty bytes", wantErr: errAny},
		}},
		{"refused swap keeps the old backend", true, []step{
			{set: a(), ro: true, id: "a", capacity: 8, changes: 1},
			{set: b(), ro: false, id: "b", wantErr: ErrReadOnlyMismatch, capacity: 8, changes: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Config{ReadOnly: tt.ro})
			if err != nil {
				t.Fatal(err)
			}
			changes := 0
			d.SetConfigChanged(func() { changes++ })
			var current *patternDisk
			id := ""
			for i, s := range tt.steps {
				if s.set == nil {
					err = d.Clear()
				} else {
					err = d.SetBackend(Config{Backend: s.set, Size: s.set.size, ReadOnly: s.ro, ID: s.id})
				}
				if s.wantErr != nil {
					if err == nil || (s.wantErr != errAny && !errors.Is(err, s.wantErr)) {
						t.Fatalf("step %d: %v, want %v", i, err, s.wantErr)
					}
					if s.set.closes.Load() != 0 || s.set.syncs.Load() != 0 {
						t.Errorf("step %d: a refused backend was synced or closed", i)
					}
				} else {
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					if current != nil {
						if current.closes.Load() != 1 {
							t.Errorf("step %d: old backend closed %d times", i, current.closes.Load())
						}
						if want := int32(btoi(!tt.ro)); current.syncs.Load() != want {
							t.Errorf("step %d: old backend synced %d times, want %d", i, current.syncs.Load(), want)
						}
					}
					current, id = s.set, s.id
				}
				if c := configCapacity(d); c != s.capacity {
					t.Errorf("step %d: capacity %d, want %d", i, c, s.capacity)
				}
				if changes != s.changes {
					t.Errorf("step %d: %d config changes, want %d", i, changes, s.changes)
				}
				if d.ID() != id || d.Stats().ID != id || d.Empty() != (current == nil) {
					t.Errorf("step %d: id %q, stats %+v, want id %q", i, d.ID(), d.Stats(), id)
				}
				buf := make([]byte, IDBytes)
				if st, _ := do(d, [][]byte{header(typeGetID, 0)}, [][]byte{buf}); st != statusOK || string(bytes.TrimRight(buf, "\x00")) != id {
					t.Errorf("step %d: GET_ID %q (status %d), want %q", i, buf, st, id)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if current != nil && current.closes.Load() != 1 {
				t.Errorf("Close closed the last backend %d times", current.closes.Load())
			}
		})
	}
}

// errAny in a test table accepts any error.
var errAny = errors.New("any error")

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestCountersFollowTheBackend: the counters describe the current backend
// and restart when it changes.
func TestCountersFollowTheBackend(t *testing.T) {
	d, _ := New(Config{ReadOnly: true})
	do(d, [][]byte{header(typeIn, 0)}, [][]byte{make([]byte, SectorSize)})
	if s := d.Stats(); s.Errors != 1 || !s.Empty {
		t.Errorf("empty slot stats %+v", s)
	}
	p := &patternDisk{fill: 1, size: 4 * SectorSize}
	if err := d.SetBackend(Config{Backend: p, Size: p.size, ReadOnly: true, ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	do(d, [][]byte{header(typeIn, 0)}, [][]byte{make([]byte, SectorSize)})
	if s := d.Stats(); s != (Stats{ID: "c1", Reads: 1, BytesRead: SectorSize}) {
		t.Errorf("stats %+v", s)
	}
}

// TestRetireErrors: a failing sync of the old backend is reported, and
// the swap has happened anyway.
func TestRetireErrors(t *testing.T) {
	p := &patternDisk{fill: 1, size: SectorSize, syncErr: errors.New("EIO")}
	d, err := New(Config{Backend: p, Size: p.size, ID: "rw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Clear(); err == nil {
		t.Error("Clear hid the sync error")
	}
	if !d.Empty() || p.closes.Load() != 1 {
		t.Errorf("empty %v, closes %d", d.Empty(), p.closes.Load())
	}
	if err := d.SetBackend(Config{Size: 1}); !errors.Is(err, ErrNoBackend) {
		t.Errorf("SetBackend without a backend = %v", err)
	}
}

// TestSwapDuringRequests hammers a device with requests from several
// goroutines while another swaps its backend between full and empty:
// every read is wholly one backend's bytes (never a mix), or IOERR while
// empty; no backend is used after it was closed, each is closed once and
// a writable one synced first. Run with -race.
func TestSwapDuringRequests(t *testing.T) {
	for _, ro := range []bool{true, false} {
		name := "read-only"
		if !ro {
			name = "read-write"
		}
		t.Run(name, func(t *testing.T) {
			const goroutines, requests, sectors = 4, 1000, 4
			d, err := New(Config{ReadOnly: ro})
			if err != nil {
				t.Fatal(err)
			}
			var changes atomic.Int32
			d.SetConfigChanged(func() { changes.Add(1) })
			var disks []*patternDisk
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range requests {
						switch (g + i) % 4 {
						case 0, 1:
							bufs := make([][]byte, sectors)
							for j := range bufs {
								bufs[j] = make([]byte, SectorSize)
							}
							st, _ := do(d, [][]byte{header(typeIn, 0)}, bufs)
							switch st {
							case statusOK:
								fill := bufs[0][0]
								for j := range bufs {
									if fill == 0 || bytes.Count(bufs[j], []byte{fill}) != SectorSize {
										t.Errorf("read mixed backends: buffer %d starts %#x, buffer 0 %#x", j, bufs[j][0], fill)
										return
									}
								}
							case statusIOErr: // empty
							default:
								t.Errorf("read status %d", st)
								return
							}
						case 2:
							do(d, [][]byte{header(typeOut, 1), make([]byte, SectorSize)}, nil)
						case 3:
							do(d, [][]byte{header(typeFlush, 0)}, nil)
						}
					}
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			swaps := 0
			for running := true; running; swaps++ {
				select {
				case <-done:
					running = false
				default:
				}
				if swaps%3 == 2 {
					if err := d.Clear(); err != nil {
						t.Fatal(err)
					}
					continue
				}
				p := &patternDisk{fill: byte(len(disks)%250 + 1), size: sectors * SectorSize}
				disks = append(disks, p)
				if err := d.SetBackend(Config{Backend: p, Size: p.size, ReadOnly: ro, ID: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			swapChanges := int(changes.Load())
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			for i, p := range disks {
				if p.late.Load() {
					t.Errorf("backend %d used after it was closed", i)
				}
				if n := p.closes.Load(); n != 1 {
					t.Errorf("backend %d closed %d times", i, n)
				}
				if !ro && p.syncs.Load() == 0 {
					t.Errorf("writable backend %d never synced", i)
				}
			}
			if swapChanges != swaps {
				t.Errorf("%d config changes for %d swaps", swapChanges, swaps)
			}
			t.Logf("%d swaps over %d requests", swaps, goroutines*requests)
		})
	}
}

// newTransport puts d behind a virtio-mmio transport over a little guest
// memory, counting interrupts.
func newTransport(t *testing.T, d *Device) (*mmio.Transport, *atomic.Int32) {
	t.Helper()
	mem, err := memory.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var irqs atomic.Int32
	tr, err := mmio.New(mmio.Config{Mem: mem, Device: d, Interrupt: func() error { irqs.Add(1); return nil }})
	if err != nil {
		mem.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		mem.Close()
	})
	return tr, &irqs
}

func reg(tr *mmio.Transport, off uint64) uint32 {
	b := make([]byte, 4)
	tr.Read(off, b)
	return binary.LittleEndian.Uint32(b)
}

func setReg(tr *mmio.Transport, off uint64, v uint32) {
	tr.Write(off, binary.LittleEndian.AppendUint32(nil, v))
}

// Register offsets this test drives (virtio 1.2, 4.2.2).
const (
	regDriverFeatures   = 0x020
	regDriverFeatSel    = 0x024
	regInterruptStatus  = 0x060
	regStatus           = 0x070
	regConfigGeneration = 0x0fc
)

// TestTransportSeesTheChange: behind a virtio-mmio transport, a backend
// change moves ConfigGeneration and, once the driver runs the device,
// raises one configuration-change interrupt; the capacity register
// follows.
func TestTransportSeesTheChange(t *testing.T) {
	d, _ := New(Config{ReadOnly: true})
	tr, irqs := newTransport(t, d)
	p := &patternDisk{fill: 1, size: 2048 * SectorSize}
	if err := d.SetBackend(Config{Backend: p, Size: p.size, ReadOnly: true, ID: "early"}); err != nil {
		t.Fatal(err)
	}
	if g := reg(tr, regConfigGeneration); g != 1 || irqs.Load() != 0 {
		t.Errorf("before the driver: generation %d, %d interrupts", g, irqs.Load())
	}
	d.Clear()
	// The driver: ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK, DRIVER_OK.
	setReg(tr, regStatus, 3)
	setReg(tr, regDriverFeatSel, 1)
	setReg(tr, regDriverFeatures, 1)
	setReg(tr, regStatus, 3|8)
	setReg(tr, regStatus, 3|8|4)
	if st := reg(tr, regStatus); st != 15 {
		t.Fatalf("status %#x", st)
	}
	if err := d.SetBackend(Config{Backend: p, Size: p.size, ReadOnly: true, ID: "late"}); err != nil {
		t.Fatal(err)
	}
	if g, st := reg(tr, regConfigGeneration), reg(tr, regInterruptStatus); g != 3 || st != 2 || irqs.Load() != 1 {
		t.Errorf("generation %d, interrupt status %#x, %d interrupts; want 3, 2, 1", g, st, irqs.Load())
	}
	if c := reg(tr, mmio.ConfigSpace); c != 2048 {
		t.Errorf("capacity %d", c)
	}
}

// TestConfigReadsAcrossSwaps reads the 64-bit capacity the way Linux's
// virtio_cread does over virtio-mmio (generation, low half, high half,
// generation; again if the generation moved) while the host swaps between
// two backends whose capacities differ in both halves: no read the
// generation calls consistent is a mix.
func TestConfigReadsAcrossSwaps(t *testing.T) {
	const small, large = 0x1_0000_0001, 0x2_0000_0002 // sectors
	d, _ := New(Config{ReadOnly: true})
	tr, _ := newTransport(t, d)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := int64(small)
			if i%2 == 1 {
				n = large
			}
			d.SetBackend(Config{Backend: &patternDisk{}, Size: n * SectorSize, ReadOnly: true})
		}
	})
	retries := 0
	for range 20000 {
		for {
			g1 := reg(tr, regConfigGeneration)
			lo, hi := reg(tr, mmio.ConfigSpace), reg(tr, mmio.ConfigSpace+4)
			if reg(tr, regConfigGeneration) != g1 {
				retries++
				continue
			}
			if c := uint64(hi)<<32 | uint64(lo); c != 0 && c != small && c != large {
				t.Fatalf("capacity %#x: a torn read the generation did not catch", c)
			}
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reads retried", retries)
}
