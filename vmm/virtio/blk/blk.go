// Package blk is a virtio block device (virtio 1.2, 5.2) backed by a file
// or a block device: read, write (unless read-only), flush and get-id, one
// request queue.
//
// A device may start empty (a slot: capacity 0, no id, every read and
// write answered IOERR) and be given a backend, or lose it, while the
// guest runs (SetBackend, Clear); the transport then tells the driver its
// configuration changed. Whether the disk is read-only is fixed when the
// device is made: the driver reads VIRTIO_BLK_F_RO once, when it probes.
//
// Requests come from the guest and are hostile: parseRequest copies the
// header once, finds the status byte and data buffers in the chain without
// trusting any length the guest wrote, and every sector range is checked
// against the disk with overflow-safe arithmetic before any I/O.
package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/huskrt/husk/vmm/virtio"
)

// Feature bits (virtio 1.2, 5.2.3).
const (
	featureSegMax = 1 << 2
	featureRO     = 1 << 5
	featureFlush  = 1 << 9
)

const (
	// SectorSize is the unit of virtio-blk addresses and lengths.
	SectorSize = 512
	// QueueSize is the request queue's size.
	QueueSize = 256
	// IDBytes is the length of the id GET_ID returns (VIRTIO_BLK_ID_BYTES).
	IDBytes    = 20
	configSize = 24 // capacity, size_max, seg_max, geometry, blk_size
)

// Backend is where the disk's bytes live: an *os.File, or memory in tests.
// A device owns its backend: if the backend is also an io.Closer, the
// device closes it when the backend is replaced or cleared, and in Close.
type Backend interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Config describes a disk.
type Config struct {
	// Backend holds the disk's bytes. Nil (for New only) makes an empty
	// slot: Size must be 0 and ID empty.
	Backend  Backend
	Size     int64 // bytes; the guest sees whole sectors
	ReadOnly bool
	ID       string // at most IDBytes bytes, returned by GET_ID
}

var (
	// ErrReadOnlyMismatch reports a backend whose read-only-ness is not
	// the device's: a driver learns it once, at probe time.
	ErrReadOnlyMismatch = errors.New("virtio-blk: read-only-ness differs from the device's")
	// ErrNoBackend reports SetBackend without a backend (use Clear).
	ErrNoBackend = errors.New("virtio-blk: no backend")
)

// Stats counts what the device did since its backend last changed (New,
// SetBackend, Clear).
type Stats struct {
	ID                          string // the backend's id; "" when empty
	Empty                       bool   // no backend
	Reads, Writes, Flushes, IDs uint64
	BytesRead, BytesWritten     uint64
	Errors                      uint64 // requests completed with IOERR or UNSUPP
	Malformed                   uint64 // chains with no status byte, completed with length 0
}

// Device is a virtio-blk device.
type Device struct {
	// readOnly is fixed for the device's life: VIRTIO_BLK_F_RO is offered
	// or not, and every backend must agree.
	readOnly bool

	qs atomic.Pointer[virtio.Queues] // set while active

	// io is held shared by each request for its whole life, and by
	// ReadConfig; a backend change holds it exclusively. So a request is
	// served against one backend from start to end, the configuration
	// space and the generation move together, and a backend leaves only
	// once no request uses it.
	io      sync.RWMutex
	backend Backend       // guarded by io; nil: empty
	sectors uint64        // guarded by io
	id      [IDBytes]byte // guarded by io; NUL-padded
	idStr   string        // guarded by io
	changed func()        // guarded by io; nil until a transport is attached

	mu    sync.Mutex
	stats Stats // guarded by mu
}

// New returns a device serving cfg.Backend, or an empty one if it is nil.
func New(cfg Config) (*Device, error) {
	if cfg.Backend == nil && (cfg.Size != 0 || cfg.ID != "") {
		return nil, fmt.Errorf("%w: an empty disk has no size or id", ErrNoBackend)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	d := &Device{readOnly: cfg.ReadOnly}
	d.setLocked(cfg)
	return d, nil
}

func checkConfig(cfg Config) error {
	if cfg.Size < 0 {
		return fmt.Errorf("virtio-blk: negative size %d", cfg.Size)
	}
	if len(cfg.ID) > IDBytes {
		return fmt.Errorf("virtio-blk: id %q is longer than %d bytes", cfg.ID, IDBytes)
	}
	return nil
}

// setLocked makes cfg the device's backend (none if cfg.Backend is nil)
// and restarts the counters.
//
// Preconditions: d.io is held exclusively, or d is not yet shared.
func (d *Device) setLocked(cfg Config) {
	d.backend = cfg.Backend
	d.sectors = uint64(cfg.Size) / SectorSize
	d.id = [IDBytes]byte{}
	copy(d.id[:], cfg.ID)
	d.idStr = cfg.ID
	d.mu.Lock()
	d.stats = Stats{ID: cfg.ID, Empty: cfg.Backend == nil}
	d.mu.Unlock()
}

// Type implements virtio.Device.
func (d *Device) Type() uint32 { return virtio.TypeBlock }

// Features implements virtio.Device.
func (d *Device) Features() uint64 {
	f := uint64(featureSegMax | featureFlush)
	if d.readOnly {
		f |= featureRO
	}
	return f
}

// ReadOnly says whether the device is read-only (offers VIRTIO_BLK_F_RO).
func (d *Device) ReadOnly() bool { return d.readOnly }

// QueueSizes implements virtio.Device.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize} }

// ReadConfig implements virtio.Device.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset >= configSize {
		return
	}
	var config [configSize]byte
	le := binary.LittleEndian
	d.io.RLock()
	le.PutUint64(config[0:], d.sectors)
	d.io.RUnlock()
	le.PutUint32(config[12:], QueueSize-2) // seg_max: all but header and status
	le.PutUint32(config[20:], SectorSize)  // blk_size
	copy(data, config[offset:])
}

// WriteConfig implements virtio.Device: the configuration is read-only
// (no writeback-cache toggle is offered).
func (d *Device) WriteConfig(uint64, []byte) {}

// SetConfigChanged implements virtio.ConfigNotifier.
func (d *Device) SetConfigChanged(changed func()) {
	d.io.Lock()
	d.changed = changed
	d.io.Unlock()
}

// Activate implements virtio.Device.
func (d *Device) Activate(_ uint64, qs virtio.Queues) error {
	d.qs.Store(&qs)
	return nil
}

// Reset implements virtio.Device.
func (d *Device) Reset() { d.qs.Store(nil) }

// Notify implements virtio.Device: serve every request available.
func (d *Device) Notify(int) {
	qs := d.qs.Load()
	if qs == nil {
		return
	}
	(*qs).Do(0, func(q *virtio.Queue) { q.Drain(d.handle) })
}

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}
