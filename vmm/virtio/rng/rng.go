// Package rng is a virtio entropy device (virtio 1.2, 5.4): it fills the
// guest's buffers from the host's crypto/rand, so a guest has good entropy
// from its first boot second (Linux's hw_random core feeds it to the
// kernel's pool).
package rng

import (
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/vmm/virtio"
)

const (
	// QueueSize is the request queue's size.
	QueueSize = 64
	// MaxPerRequest bounds the bytes one request gets, whatever buffers
	// the guest offers: the spec lets the device fill fewer.
	MaxPerRequest = 64 << 10
)

// Device is a virtio-rng device.
type Device struct {
	qs    atomic.Pointer[virtio.Queues]
	bytes atomic.Uint64
}

// New returns an entropy device.
func New() *Device { return &Device{} }

// Type implements virtio.Device.
func (d *Device) Type() uint32 { return virtio.TypeEntropy }

// Features implements virtio.Device: there are none.
func (d *Device) Features() uint64 { return 0 }

// QueueSizes implements virtio.Device.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize} }

// ReadConfig implements virtio.Device: there is no configuration.
func (d *Device) ReadConfig(_ uint64, data []byte) { clear(data) }

// WriteConfig implements virtio.Device.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements virtio.Device.
func (d *Device) Activate(_ uint64, qs virtio.Queues) error {
	d.qs.Store(&qs)
	return nil
}

// Reset implements virtio.Device.
func (d *Device) Reset() { d.qs.Store(nil) }

// Notify implements virtio.Device.
func (d *Device) Notify(int) {
	qs := d.qs.Load()
	if qs == nil {
		return
	}
	(*qs).Do(0, func(q *virtio.Queue) { q.Drain(d.fill) })
}

// fill writes random bytes into the chain's writable buffers, at most
// MaxPerRequest, and returns how many.
func (d *Device) fill(c *virtio.Chain) uint32 {
	n := 0
	for _, b := range c.WritableBuffers() {
		m := min(len(b.Data), MaxPerRequest-n)
		got := readRandom(b.Data[:m])
		n += got
		if got < m {
			break
		}
	}
	d.bytes.Add(uint64(n))
	return uint32(n)
}

// Bytes returns how many random bytes the guest has received.
func (d *Device) Bytes() uint64 { return d.bytes.Load() }

// readRandom fills p from the kernel's random number generator with
// getrandom(2), as crypto/rand does on Linux (crypto/rand would link Go's
// FIPS 140 module, DRBG, AES and SHA-3 included, into the VMM process for
// the same bytes), and returns how many it filled: all of them, unless
// the call fails.
func readRandom(p []byte) int {
	n := 0
	for n < len(p) {
		m, err := unix.Getrandom(p[n:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return n
}
