package mmio

import (
	"errors"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/virtio"
)

func TestIdentification(t *testing.T) {
	d := newDriver(t)
	for _, r := range []struct {
		name string
		off  uint64
		want uint32
	}{
		{"magic", regMagic, 0x7472_6976},
		{"version", regVersion, 2},
		{"device id", regDeviceID, 42},
		{"vendor", regVendorID, vendorID},
		{"features 0-31", regDeviceFeatures, 1<<3 | 1<<28},
		{"queue 0 max", regQueueNumMax, qsize},
		{"shared memory length", regSHMLenLow, 0xffff_ffff},
		{"config generation", regConfigGeneration, 0},
		{"device config", ConfigSpace, 0xc0ff_ee00},
	} {
		if got := d.read(r.off); got != r.want {
			t.Errorf("%s = %#x, want %#x", r.name, got, r.want)
		}
	}
	d.write(regDeviceFeatSel, 1)
	if got := d.read(regDeviceFeatures); got != 1 { // VERSION_1
		t.Errorf("features 32-63 = %#x", got)
	}
	d.write(regDeviceFeatSel, 7)
	if got := d.read(regDeviceFeatures); got != 0 {
		t.Errorf("features 224-255 = %#x", got)
	}
	d.write(regQueueSel, 1)
	if got := d.read(regQueueNumMax); got != 4 {
		t.Errorf("queue 1 max = %d", got)
	}
	d.write(regQueueSel, 2)
	if got := d.read(regQueueNumMax); got != 0 {
		t.Errorf("queue 2 (absent) max = %d", got)
	}
	// Registers are 32 bits wide: other accesses read zero.
	b := []byte{1, 2}
	d.tr.Read(regMagic, b)
	if b[0] != 0 || b[1] != 0 {
		t.Errorf("16-bit read of the magic = % x", b)
	}
	b4 := []byte{1, 2, 3, 4}
	d.tr.Read(regMagic+2, b4)
	if b4[0] != 0 {
		t.Errorf("misaligned read = % x", b4)
	}
}

func TestRoundTripAndInterrupts(t *testing.T) {
	d := newDriver(t)
	d.start()
	d.waitKicks()
	d.dev.mu.Lock()
	features := d.dev.features
	d.dev.mu.Unlock()
	if features != virtio.FeatureVersion1|virtio.FeatureRingIndirectDesc {
		t.Errorf("device activated with features %#x", features)
	}
	d.post()
	d.write(regQueueNotify, 0) // no ioeventfd here: the write reaches the transport
	d.waitNotified(0)
	d.waitIRQ()
	if d.usedIndex() != 1 {
		t.Fatalf("used index %d, want 1", d.usedIndex())
	}
	if used, _ := d.mem.ReadUint32(usedAddr + 8); used != 7 {
		t.Errorf("used length %d", used)
	}
	if st := d.read(regInterruptStatus); st != intUsedBuffer {
		t.Errorf("interrupt status %#x", st)
	}
	d.write(regInterruptACK, intUsedBuffer)
	if st := d.read(regInterruptStatus); st != 0 {
		t.Errorf("interrupt status after ACK %#x", st)
	}
	// A notification for a queue that is not ready does nothing.
	d.write(regQueueNotify, 1)
	d.waitNotified(1)
	if err := d.tr.Do(1, func(*virtio.Queue) { t.Error("f called for a dead queue") }); !errors.Is(err, virtio.ErrQueueNotLive) {
		t.Errorf("Do on a dead queue = %v", err)
	}
	// Notifications for queues that do not exist are dropped.
	d.write(regQueueNotify, 0xffff_ffff)
	if err := d.tr.Do(5, func(*virtio.Queue) {}); !errors.Is(err, virtio.ErrQueueNotLive) {
		t.Errorf("Do on queue 5 = %v", err)
	}
}

func TestFeatureNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		features uint64
		ok       bool
	}{
		{"version 1 only", virtio.FeatureVersion1, true},
		{"all offered", virtio.FeatureVersion1 | virtio.FeatureRingIndirectDesc | 1<<3, true},
		{"legacy driver", 1 << 3, false},
		{"not offered", virtio.FeatureVersion1 | 1<<29, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t)
			st := d.negotiate(tt.features)
			if (st&statusFeaturesOK != 0) != tt.ok {
				t.Fatalf("status %#x, want FEATURES_OK %v", st, tt.ok)
			}
			d.write(regStatus, st|statusDriverOK)
			d.dev.mu.Lock()
			activated := d.dev.activated
			d.dev.mu.Unlock()
			if got := d.read(regStatus)&statusDriverOK != 0; got != tt.ok || (activated == 1) != tt.ok {
				t.Errorf("DRIVER_OK kept %v, activated %d times", got, activated)
			}
		})
	}
}

func TestBadQueuesNeedReset(t *testing.T) {
	tests := []struct {
		name                string
		size                uint32
		desc, avail, used   uint64
		wantReady, wantIRQs bool
	}{
		{"good", qsize, descAddr, availAddr, usedAddr, true, false},
		{"size not a power of two", 6, descAddr, availAddr, usedAddr, false, true},
		{"size above the maximum", 16, descAddr, availAddr, usedAddr, false, true},
		{"size 0", 0, descAddr, availAddr, usedAddr, false, true},
		{"descriptors beyond RAM", qsize, testRAM - 16, availAddr, usedAddr, false, true},
		{"used ring in the MMIO hole", qsize, descAddr, availAddr, 0xd000_0000, false, true},
		{"misaligned descriptors", qsize, descAddr + 8, availAddr, usedAddr, false, true},
		{"address wrapping 2^64", qsize, ^uint64(0) - 15, availAddr, usedAddr, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t)
			d.negotiate(virtio.FeatureVersion1)
			d.setupQueue(0, tt.size, tt.desc, tt.avail, tt.used)
			if ready := d.read(regQueueReady) == 1; ready != tt.wantReady {
				t.Errorf("ready = %v", ready)
			}
			needsReset := d.read(regStatus)&statusNeedsReset != 0
			if needsReset != tt.wantIRQs || (d.read(regInterruptStatus)&intConfigChange != 0) != tt.wantIRQs {
				t.Errorf("NEEDS_RESET %v, config interrupt %#x", needsReset, d.read(regInterruptStatus))
			}
			// Only a reset clears NEEDS_RESET.
			d.write(regStatus, d.read(regStatus)&^statusNeedsReset)
			if got := d.read(regStatus)&statusNeedsReset != 0; got != needsReset {
				t.Error("the driver cleared NEEDS_RESET without a reset")
			}
			d.write(regStatus, 0)
			if d.read(regStatus) != 0 || d.read(regInterruptStatus) != 0 {
				t.Error("reset left status or interrupts")
			}
		})
	}
}

func TestQueueRegistersFrozenWhileReady(t *testing.T) {
	d := newDriver(t)
	d.start()
	d.waitKicks()
	d.write(regQueueSel, 0)
	d.write(regQueueDescLow, 0x8000) // ignored: the queue is live
	d.write(regQueueNum, 2)
	d.post()
	d.write(regQueueNotify, 0)
	d.waitNotified(0)
	d.waitIRQ()
	if d.usedIndex() != 1 {
		t.Fatal("the live queue moved")
	}
}

func TestResetTakesQueuesAway(t *testing.T) {
	d := newDriver(t)
	d.start()
	d.waitKicks()
	resets := func() int {
		d.dev.mu.Lock()
		defer d.dev.mu.Unlock()
		return d.dev.resets
	}
	before := resets()
	d.write(regStatus, 0)
	if n := resets() - before; n != 1 {
		t.Errorf("device reset %d times", n)
	}
	if err := d.tr.Do(0, func(*virtio.Queue) {}); !errors.Is(err, virtio.ErrQueueNotLive) {
		t.Errorf("Do after reset = %v", err)
	}
	if d.read(regQueueReady) != 0 || d.read(regQueueNumMax) != qsize {
		t.Error("queue state survived the reset")
	}
	// Before DRIVER_OK, notifications do not reach the device.
	d.write(regQueueNotify, 0)
	select {
	case i := <-d.dev.notified:
		t.Errorf("device notified for queue %d while stopped", i)
	case <-time.After(50 * time.Millisecond):
	}
	// And the driver can start again.
	d.next = 0
	d.mem.WriteUint16(usedAddr+2, 0)
	d.start()
	d.waitKicks()
	d.post()
	d.write(regQueueNotify, 0)
	d.waitNotified(0)
	d.waitIRQ()
	if d.usedIndex() != 1 {
		t.Errorf("used index %d after a restart", d.usedIndex())
	}
}

func TestActivateFailureNeedsReset(t *testing.T) {
	d := newDriver(t)
	d.dev.failStart = true
	d.negotiate(virtio.FeatureVersion1)
	d.write(regStatus, 1|2|statusFeaturesOK|statusDriverOK)
	if st := d.read(regStatus); st&statusDriverOK != 0 || st&statusNeedsReset == 0 {
		t.Errorf("status %#x, want NEEDS_RESET without DRIVER_OK", st)
	}
}

func TestIOEvents(t *testing.T) {
	d := newDriver(t)
	evs := d.tr.IOEvents(0xd000_0000)
	if len(evs) != 2 {
		t.Fatalf("%d ioeventfds, want one per queue", len(evs))
	}
	for i, e := range evs {
		if e.Event.Addr != 0xd000_0050 || e.Event.Len != 4 || !e.Event.DataMatch || e.Event.Data != uint64(i) || e.FD == nil {
			t.Errorf("ioeventfd %d: %+v", i, e)
		}
	}
}
