package vsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/huskrt/husk/vmm/virtio"
)

// Queue indexes and limits.
const (
	rxQueue    = 0
	txQueue    = 1
	eventQueue = 2
	// QueueSize is each queue's size.
	QueueSize = 256
	// ConnBuffer is the buffer each connection advertises to the guest
	// (buf_alloc) and the most guest data the device holds for it.
	ConnBuffer = 64 << 10
	// MaxConns bounds the connections of one device: with ConnBuffer and
	// the read buffer, a guest can make the device hold at most about
	// MaxConns × 96 KiB.
	MaxConns = 256
	// maxPendingRST bounds the resets owed for packets to unknown
	// connections; more are dropped (the guest times out instead).
	maxPendingRST = 256
	// firstHostPort is where ports for host-initiated connections start,
	// as in Firecracker.
	firstHostPort = 1 << 30
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("invalid vsock config")

// Config describes the device.
type Config struct {
	// CID is the guest's context id (3 or more).
	CID uint64
	// UDSPath is the Unix socket host processes connect to; guest
	// connections to host port P go to UDSPath_P.
	UDSPath string
	// Log receives protocol errors; nil discards them.
	Log *slog.Logger
}

// Device is a virtio-vsock device with a hybrid (Unix socket) host side.
type Device struct {
	cfg      Config
	log      *slog.Logger
	config   [8]byte
	listener *net.UnixListener
	qs       atomic.Pointer[virtio.Queues]
	wg       sync.WaitGroup // listener, handshakes, dials, per-connection I/O

	mu       sync.Mutex
	conns    map[connKey]*conn // guarded by mu
	ready    []*conn           // connections with something for the guest; guarded by mu
	rsts     []header          // resets owed for unknown connections; guarded by mu
	nextPort uint32            // guarded by mu
	closed   bool              // guarded by mu
	// handshakes are host connections still sending CONNECT, closed by
	// Close so it need not wait for their deadline; guarded by mu.
	handshakes map[net.Conn]struct{}
}

// New creates the device and listens on cfg.UDSPath (which must not
// exist). Close stops it.
func New(cfg Config) (*Device, error) {
	if cfg.CID < 3 || cfg.CID > 0xffff_ffff {
		return nil, fmt.Errorf("%w: guest CID %d (want 3..2^32-1)", ErrConfig, cfg.CID)
	}
	if cfg.UDSPath == "" {
		return nil, fmt.Errorf("%w: no Unix socket path", ErrConfig)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.UDSPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vsock: %w", err)
	}
	d := &Device{cfg: cfg, log: cfg.Log, listener: l, conns: map[connKey]*conn{}, nextPort: firstHostPort,
		handshakes: map[net.Conn]struct{}{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	binary.LittleEndian.PutUint64(d.config[:], cfg.CID)
	d.wg.Go(d.accept)
	return d, nil
}

// Close stops listening, ends every connection and waits for the device's
// goroutines. The Unix socket file is removed.
func (d *Device) Close() error {
	d.mu.Lock()
	d.closed = true
	d.resetLocked()
	for s := range d.handshakes {
		s.Close()
	}
	d.mu.Unlock()
	err := d.listener.Close()
	d.wg.Wait()
	return err
}

// Type implements virtio.Device.
func (d *Device) Type() uint32 { return virtio.TypeVsock }

// Features implements virtio.Device: stream sockets only (no SEQPACKET).
func (d *Device) Features() uint64 { return 0 }

// QueueSizes implements virtio.Device: receive, transmit, event.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize, QueueSize, QueueSize} }

// ReadConfig implements virtio.Device: the guest CID.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < uint64(len(d.config)) {
		copy(data, d.config[offset:])
	}
}

// WriteConfig implements virtio.Device: the configuration is read-only.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements virtio.Device.
func (d *Device) Activate(_ uint64, qs virtio.Queues) error {
	d.qs.Store(&qs)
	return nil
}

// Reset implements virtio.Device: the driver is gone, and so are its
// connections.
func (d *Device) Reset() {
	d.qs.Store(nil)
	d.mu.Lock()
	d.resetLocked()
	d.mu.Unlock()
}

func (d *Device) resetLocked() {
	for _, c := range d.conns {
		d.removeLocked(c)
	}
	d.ready, d.rsts = nil, nil
}

// Notify implements virtio.Device.
func (d *Device) Notify(i int) {
	qs := d.qs.Load()
	if qs == nil {
		return
	}
	if i == txQueue {
		(*qs).Do(txQueue, func(q *virtio.Queue) {
			q.Drain(func(c *virtio.Chain) uint32 {
				d.handleTX(c)
				return 0
			})
		})
	}
	if i == txQueue || i == rxQueue {
		d.flushRX()
	}
}

// removeLocked ends a connection: its goroutines stop, its socket closes.
// Preconditions: d.mu is held.
func (d *Device) removeLocked(c *conn) {
	if c.closed {
		return
	}
	c.closed = true
	delete(d.conns, c.key)
	if c.sock != nil {
		c.sock.Close()
	}
	c.cond.Broadcast()
}

// queueLocked puts c on the ready list.
// Preconditions: d.mu is held.
func (d *Device) queueLocked(c *conn) {
	if !c.queued && !c.closed {
		c.queued = true
		d.ready = append(d.ready, c)
	}
}

// rstLocked ends c and owes the guest a RST for it (sent from the reset
// list, so after c is gone). A connection already ended gets nothing.
// Preconditions: d.mu is held.
func (d *Device) rstLocked(c *conn) {
	if c.closed {
		return
	}
	d.removeLocked(c)
	d.rstForLocked(c.key)
}

// rstForLocked queues a RST for a connection the device does not have.
// Preconditions: d.mu is held.
func (d *Device) rstForLocked(k connKey) {
	if len(d.rsts) < maxPendingRST {
		d.rsts = append(d.rsts, d.header(k, opRST, 0))
	}
}

// header returns a packet header from the host side of connection k.
func (d *Device) header(k connKey, op uint16, flags uint32) header {
	return header{
		srcCID: HostCID, dstCID: d.cfg.CID, srcPort: k.local, dstPort: k.peer,
		typ: typeStream, op: op, flags: flags, bufAlloc: ConnBuffer,
	}
}
