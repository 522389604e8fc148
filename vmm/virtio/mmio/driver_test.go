package mmio

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/virtio"
)

// Guest layout for the tests: queue 0's rings and a data area.
const (
	testRAM   = 1 << 20
	descAddr  = 0x1000
	availAddr = 0x2000
	usedAddr  = 0x3000
	dataAddr  = 0x10000
	qsize     = 8
)

// fakeDevice completes every chain with used length 7 and records calls.
type fakeDevice struct {
	mu        sync.Mutex
	qs        virtio.Queues
	features  uint64
	activated int
	resets    int
	notified  chan int
	failStart bool
}

func newFakeDevice() *fakeDevice { return &fakeDevice{notified: make(chan int, 16)} }

func (f *fakeDevice) Type() uint32         { return 42 }
func (f *fakeDevice) Features() uint64     { return 1 << 3 }
func (f *fakeDevice) QueueSizes() []uint16 { return []uint16{qsize, 4} }
func (f *fakeDevice) ReadConfig(off uint64, data []byte) {
	clear(data)
	if off == 0 && len(data) == 4 {
		binary.LittleEndian.PutUint32(data, 0xc0ff_ee00)
	}
}
func (f *fakeDevice) WriteConfig(uint64, []byte) {}
func (f *fakeDevice) Activate(features uint64, qs virtio.Queues) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStart {
		return errTest
	}
	f.qs, f.features = qs, features
	f.activated++
	return nil
}
func (f *fakeDevice) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.qs = nil
	f.resets++
}
func (f *fakeDevice) Notify(i int) {
	f.mu.Lock()
	qs := f.qs
	f.mu.Unlock()
	if qs != nil {
		qs.Do(i, func(q *virtio.Queue) { q.Drain(func(*virtio.Chain) uint32 { return 7 }) })
	}
	select {
	case f.notified <- i:
	default: // nobody is counting (the fuzz target)
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("device refused to start")

// driver plays a virtio-mmio driver against a transport.
type driver struct {
	t    *testing.T
	tr   *Transport
	dev  *fakeDevice
	mem  *memory.Memory
	irqs chan struct{}
	next uint16 // next available index
}

func newDriver(t *testing.T) *driver {
	t.Helper()
	return newDriverWith(t, nil)
}

// newDriverWith is newDriver with the transport driving wrap(fake device)
// instead of the fake device itself (nil: the fake device).
func newDriverWith(t *testing.T, wrap func(*fakeDevice) virtio.Device) *driver {
	t.Helper()
	mem, err := memory.New(testRAM)
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{t: t, dev: newFakeDevice(), mem: mem, irqs: make(chan struct{}, 64)}
	var dev virtio.Device = d.dev
	if wrap != nil {
		dev = wrap(d.dev)
	}
	d.tr, err = New(Config{Mem: mem, Device: dev, Interrupt: func() error { d.irqs <- struct{}{}; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.tr.Close()
		mem.Close()
	})
	return d
}

func (d *driver) read(off uint64) uint32 {
	var b [4]byte
	d.tr.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func (d *driver) write(off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	if err := d.tr.Write(off, b[:]); err != nil {
		d.t.Fatalf("write %#x: %v", off, err)
	}
}

// negotiate runs the status dance up to FEATURES_OK with the given driver
// features and returns the status the device kept.
func (d *driver) negotiate(features uint64) uint32 {
	d.write(regStatus, 0)
	d.write(regStatus, 1)
	d.write(regStatus, 1|2)
	d.write(regDriverFeatSel, 0)
	d.write(regDriverFeatures, uint32(features))
	d.write(regDriverFeatSel, 1)
	d.write(regDriverFeatures, uint32(features>>32))
	d.write(regStatus, 1|2|statusFeaturesOK)
	return d.read(regStatus)
}

// setupQueue places queue sel's rings and makes it ready.
func (d *driver) setupQueue(sel, size uint32, desc, avail, used uint64) {
	d.write(regQueueSel, sel)
	d.write(regQueueNum, size)
	d.write(regQueueDescLow, uint32(desc))
	d.write(regQueueDescHigh, uint32(desc>>32))
	d.write(regQueueDriverLow, uint32(avail))
	d.write(regQueueDriverHigh, uint32(avail>>32))
	d.write(regQueueDeviceLow, uint32(used))
	d.write(regQueueDeviceHigh, uint32(used>>32))
	d.write(regQueueReady, 1)
}

// start brings the device up with queue 0 at the test addresses.
func (d *driver) start() {
	if st := d.negotiate(virtio.FeatureVersion1 | virtio.FeatureRingIndirectDesc); st&statusFeaturesOK == 0 {
		d.t.Fatalf("FEATURES_OK refused: status %#x", st)
	}
	d.setupQueue(0, qsize, descAddr, availAddr, usedAddr)
	d.write(regStatus, 1|2|statusFeaturesOK|statusDriverOK)
	if st := d.read(regStatus); st&statusDriverOK == 0 {
		d.t.Fatalf("DRIVER_OK refused: status %#x", st)
	}
}

// post makes a one-descriptor chain available (descriptor i = slot).
func (d *driver) post() {
	slot := uint64(d.next % qsize)
	d.mem.WriteUint64(descAddr+16*slot, dataAddr)
	d.mem.WriteUint32(descAddr+16*slot+8, 64)
	d.mem.WriteUint16(descAddr+16*slot+12, 2) // device-writable
	d.mem.WriteUint16(availAddr+4+2*slot, uint16(slot))
	d.next++
	d.mem.WriteUint16(availAddr+2, d.next)
}

func (d *driver) usedIndex() uint16 {
	v, _ := d.mem.ReadUint16(usedAddr + 2)
	return v
}

func (d *driver) waitIRQ() {
	d.t.Helper()
	select {
	case <-d.irqs:
	case <-time.After(5 * time.Second):
		d.t.Fatal("no interrupt")
	}
}

func (d *driver) waitNotified(want int) {
	d.t.Helper()
	select {
	case got := <-d.dev.notified:
		if got != want {
			d.t.Fatalf("device notified for queue %d, want %d", got, want)
		}
	case <-time.After(5 * time.Second):
		d.t.Fatal("device not notified")
	}
}

// waitKicks waits for the notification DRIVER_OK gives every queue, in
// whatever order the queues' goroutines deliver them.
func (d *driver) waitKicks() {
	d.t.Helper()
	seen := map[int]bool{}
	for len(seen) < 2 {
		select {
		case i := <-d.dev.notified:
			seen[i] = true
		case <-time.After(5 * time.Second):
			d.t.Fatalf("kicks after DRIVER_OK: got %v", seen)
		}
	}
}
