// Package net is a virtio network device (virtio 1.2, 5.1) whose host side
// is a packet backend: a tap device (OpenTap), or in tests one end of a
// datagram socketpair. One frame per Read and per Write.
//
// The device offers only VIRTIO_NET_F_MAC: no checksum offload, no
// segmentation offload, no mergeable receive buffers, no control queue.
// So every header the guest sends must have no flags and no GSO type; a
// frame the guest sends is an Ethernet frame of 14 to MaxFrame bytes; a
// frame from the host is delivered only whole, into one receive chain big
// enough for it and its header, and dropped otherwise.
package net

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/huskrt/husk/vmm/virtio"
)

const (
	// QueueSize is the size of the receive and transmit queues.
	QueueSize = 256
	// HeaderSize is struct virtio_net_hdr with num_buffers: the header
	// every frame carries once VIRTIO_F_VERSION_1 is negotiated.
	HeaderSize = 12
	// MinFrame is an Ethernet header; MaxFrame bounds what a guest may
	// send (the largest IP packet in an Ethernet frame) and what the
	// device reads from its backend.
	MinFrame = 14
	MaxFrame = 14 + 65535

	// FeatureMAC: the configuration space holds the device's MAC.
	FeatureMAC = 1 << 5

	rxQueue = 0
	txQueue = 1
)

// Errors a transmit chain can get; each drops the frame, counted in
// Stats().TxDropped.
var (
	ErrShortHeader = errors.New("transmit chain shorter than the virtio-net header")
	ErrHeader      = errors.New("virtio-net header asks for an offload that was not offered")
	ErrFrameSize   = errors.New("frame shorter than an Ethernet header or longer than MaxFrame")
)

// Config describes a network device.
type Config struct {
	// MAC is the guest's address, in the configuration space.
	MAC [6]byte
	// Backend carries frames to and from the host: one frame per Read
	// and Write. The device closes it.
	Backend io.ReadWriteCloser
	Log     *slog.Logger
}

// Stats counts a device's traffic.
type Stats struct {
	TxFrames, TxBytes, TxDropped uint64
	RxFrames, RxBytes, RxDropped uint64
}

// Device is a virtio-net device.
type Device struct {
	cfg Config
	log *slog.Logger
	qs  atomic.Pointer[virtio.Queues]

	rxReady chan struct{} // the driver added receive buffers (or activated)
	closing chan struct{}
	close   sync.Once
	wg      sync.WaitGroup

	txFrames, txBytes, txDropped atomic.Uint64
	rxFrames, rxBytes, rxDropped atomic.Uint64
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("invalid virtio-net config")

// New returns a device and starts reading its backend.
func New(cfg Config) (*Device, error) {
	if cfg.Backend == nil {
		return nil, errors.Join(ErrConfig, errors.New("no backend"))
	}
	if cfg.MAC[0]&1 != 0 {
		return nil, errors.Join(ErrConfig, errors.New("multicast MAC"))
	}
	d := &Device{cfg: cfg, log: cfg.Log, rxReady: make(chan struct{}, 1), closing: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.wg.Go(d.receive)
	return d, nil
}

// Close closes the backend and waits for the device's reader.
func (d *Device) Close() error {
	var err error
	d.close.Do(func() {
		close(d.closing)
		err = d.cfg.Backend.Close()
		d.wg.Wait()
	})
	return err
}

// Type implements virtio.Device.
func (d *Device) Type() uint32 { return virtio.TypeNet }

// Features implements virtio.Device.
func (d *Device) Features() uint64 { return FeatureMAC }

// QueueSizes implements virtio.Device: receive and transmit.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ReadConfig implements virtio.Device: the MAC, then zeros.
func (d *Device) ReadConfig(off uint64, data []byte) {
	clear(data)
	if off < uint64(len(d.cfg.MAC)) {
		copy(data, d.cfg.MAC[off:])
	}
}

// WriteConfig implements virtio.Device: the MAC is read-only (without
// VIRTIO_NET_F_CTRL_MAC_ADDR the driver may not change it).
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements virtio.Device.
func (d *Device) Activate(_ uint64, qs virtio.Queues) error {
	d.qs.Store(&qs)
	d.kickRx()
	return nil
}

// Reset implements virtio.Device.
func (d *Device) Reset() { d.qs.Store(nil) }

// Notify implements virtio.Device.
func (d *Device) Notify(i int) {
	qs := d.qs.Load()
	if qs == nil {
		return
	}
	switch i {
	case rxQueue:
		d.kickRx()
	case txQueue:
		(*qs).Do(txQueue, func(q *virtio.Queue) { q.Drain(d.transmit) })
	}
}

func (d *Device) kickRx() {
	select {
	case d.rxReady <- struct{}{}:
	default:
	}
}

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	return Stats{d.txFrames.Load(), d.txBytes.Load(), d.txDropped.Load(), d.rxFrames.Load(), d.rxBytes.Load(), d.rxDropped.Load()}
}

// transmit sends one transmit chain's frame to the backend; its used
// length is 0 (the device writes nothing into a transmit chain).
func (d *Device) transmit(c *virtio.Chain) uint32 {
	frame, err := parseTx(c)
	if err != nil {
		d.txDropped.Add(1)
		d.log.Debug("virtio-net: transmit dropped", "err", err)
		return 0
	}
	if _, err := d.cfg.Backend.Write(frame); err != nil {
		d.txDropped.Add(1)
		d.log.Debug("virtio-net: backend write", "err", err)
		return 0
	}
	d.txFrames.Add(1)
	d.txBytes.Add(uint64(len(frame)))
	return 0
}

// parseTx copies a transmit chain's header and frame out of guest memory
// (once: the guest may change them meanwhile) and checks them. Only the
// device-readable buffers count; the header may span buffers.
func parseTx(c *virtio.Chain) ([]byte, error) {
	n := 0
	for _, b := range c.ReadableBuffers() {
		n += len(b.Data) // at most queue size × 4 GiB: no overflow in int
	}
	if n < HeaderSize {
		return nil, ErrShortHeader
	}
	if n-HeaderSize < MinFrame || n-HeaderSize > MaxFrame {
		return nil, ErrFrameSize
	}
	all := make([]byte, 0, n)
	for _, b := range c.ReadableBuffers() {
		all = append(all, b.Data...)
	}
	hdr := all[:HeaderSize]
	// flags (NEEDS_CSUM, DATA_VALID) and gso_type need offloads this
	// device does not offer.
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, ErrHeader
	}
	return all[HeaderSize:], nil
}

// fillRx writes frame, after its header, into a receive chain's writable
// buffers and returns the used length; 0 if the chain cannot hold it all.
func fillRx(c *virtio.Chain, frame []byte) uint32 {
	room := 0
	for _, b := range c.WritableBuffers() {
		room += len(b.Data)
	}
	if room < HeaderSize+len(frame) {
		return 0
	}
	var hdr [HeaderSize]byte
	binary.LittleEndian.PutUint16(hdr[10:], 1) // num_buffers
	n := 0
	for _, src := range [][]byte{hdr[:], frame} {
		for len(src) > 0 {
			// Find the buffer holding byte n of the chain's writable space.
			off := n
			for _, b := range c.WritableBuffers() {
				if off < len(b.Data) {
					k := copy(b.Data[off:], src)
					src, n = src[k:], n+k
					break
				}
				off -= len(b.Data)
			}
		}
	}
	return uint32(n)
}

// receive reads frames from the backend and hands each to the guest,
// waiting (holding that one frame) while the guest has no receive buffer.
// A frame that arrives while the driver has not activated the device is
// dropped, as a NIC with its link down would.
func (d *Device) receive() {
	buf := make([]byte, MaxFrame)
	for {
		n, err := d.cfg.Backend.Read(buf)
		if err != nil {
			select {
			case <-d.closing:
			default:
				d.log.Warn("virtio-net: backend read", "err", err)
			}
			return
		}
		if !d.deliver(buf[:n]) {
			return
		}
	}
}

// deliver gives frame to the guest, or drops it; false when the device is
// closing.
func (d *Device) deliver(frame []byte) bool {
	for {
		qs := d.qs.Load()
		if qs == nil {
			d.rxDropped.Add(1)
			return true
		}
		done := false
		err := (*qs).Do(rxQueue, func(q *virtio.Queue) {
			c, ok, err := q.Pop()
			if err != nil || !ok {
				return
			}
			n := fillRx(&c, frame)
			if n == 0 {
				d.rxDropped.Add(1)
			} else {
				d.rxFrames.Add(1)
				d.rxBytes.Add(uint64(len(frame)))
			}
			q.Push(c.Head, n)
			done = true
		})
		if done || err != nil {
			if err != nil {
				d.rxDropped.Add(1)
			}
			return true
		}
		select {
		case <-d.rxReady:
		case <-d.closing:
			return false
		}
	}
}
