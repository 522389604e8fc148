package mmio

import (
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/virtio"
)

// configDevice is the fake device with a configuration that changes: it
// keeps the function the transport gives it.
type configDevice struct {
	*fakeDevice
	changed func()
}

func (c *configDevice) SetConfigChanged(f func()) { c.changed = f }

func newConfigDriver(t *testing.T) (*driver, *configDevice) {
	t.Helper()
	var cd *configDevice
	d := newDriverWith(t, func(f *fakeDevice) virtio.Device {
		cd = &configDevice{fakeDevice: f}
		return cd
	})
	if cd.changed == nil {
		t.Fatal("the transport did not give the device its config-change function")
	}
	return d, cd
}

// irqCount empties the interrupt channel and says how many were raised.
func (d *driver) irqCount() int {
	n := 0
	for {
		select {
		case <-d.irqs:
			n++
		default:
			return n
		}
	}
}

// TestConfigChange: every change moves ConfigGeneration; only a driver
// with the device running (DRIVER_OK) gets the configuration-change bit
// and one interrupt per change; the acknowledgement clears the bit.
func TestConfigChange(t *testing.T) {
	tests := []struct {
		name    string
		driver  func(d *driver) // the driver's state when the device changes
		changes int
		wantIRQ bool
	}{
		{"before any driver", func(*driver) {}, 1, false},
		{"while negotiating", func(d *driver) { d.negotiate(virtio.FeatureVersion1) }, 1, false},
		{"driver running", func(d *driver) { d.start(); d.waitKicks() }, 1, true},
		{"driver running, three changes", func(d *driver) { d.start(); d.waitKicks() }, 3, true},
		{"driver reset the device", func(d *driver) { d.start(); d.waitKicks(); d.write(regStatus, 0) }, 1, false},
		{"device needs reset", func(d *driver) {
			d.start()
			d.waitKicks()
			d.write(regQueueSel, 1)
			d.write(regQueueNum, 3) // not a power of two: NEEDS_RESET and its interrupt
			d.write(regQueueReady, 1)
			d.irqCount()
			d.write(regInterruptACK, intConfigChange)
		}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, cd := newConfigDriver(t)
			tt.driver(d)
			d.irqCount()
			gen := d.read(regConfigGeneration)
			for range tt.changes {
				cd.changed()
			}
			if got := d.read(regConfigGeneration); got != gen+uint32(tt.changes) {
				t.Errorf("generation %d after %d changes from %d", got, tt.changes, gen)
			}
			st := d.read(regInterruptStatus)
			if (st&intConfigChange != 0) != tt.wantIRQ {
				t.Errorf("interrupt status %#x, want the config bit %v", st, tt.wantIRQ)
			}
			if st&intUsedBuffer != 0 {
				t.Errorf("interrupt status %#x: a config change set the used-buffer bit", st)
			}
			want := 0
			if tt.wantIRQ {
				want = tt.changes
			}
			if n := d.irqCount(); n != want {
				t.Errorf("%d interrupts, want %d", n, want)
			}
			d.write(regInterruptACK, intConfigChange)
			if st := d.read(regInterruptStatus); st != 0 {
				t.Errorf("interrupt status %#x after the acknowledgement", st)
			}
		})
	}
}

// TestConfigChangeHammer: changes from several goroutines while a driver
// reads the generation and uses the queue; run with -race. No change is
// lost and the generation never goes back.
func TestConfigChangeHammer(t *testing.T) {
	const goroutines, changes = 4, 500
	d, cd := newConfigDriver(t)
	d.start()
	d.waitKicks()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range changes {
				cd.changed()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := d.read(regConfigGeneration)
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-d.irqs:
		default:
		}
		g := d.read(regConfigGeneration)
		if g < last {
			t.Fatalf("generation went back from %d to %d", last, g)
		}
		last = g
		d.write(regInterruptACK, d.read(regInterruptStatus))
	}
	if g := d.read(regConfigGeneration); g != goroutines*changes {
		t.Errorf("generation %d, want %d", g, goroutines*changes)
	}
	// The queue still works.
	d.irqCount()
	d.post()
	d.write(regQueueNotify, 0)
	d.waitNotified(0)
	select {
	case <-d.irqs:
	case <-time.After(5 * time.Second):
		t.Fatal("no used-buffer interrupt after the changes")
	}
}
