// Package blk is a virtio block device (virtio 1.2, 5.2) backed by a file:
// read, write (unless read-only), flush and get-id, one request queue.
//
// Requests come from the guest and are hostile: parseRequest copies the
// header once, finds the status byte and data buffers in the chain without
// trusting any length the guest wrote, and every sector range is checked
// against the disk with overflow-safe arithmetic before any I/O.
package blk

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
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
type Backend interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Config describes a disk.
type Config struct {
	Backend  Backend
	Size     int64 // bytes; the guest sees whole sectors
	ReadOnly bool
	ID       string // at most IDBytes bytes, returned by GET_ID
}

// Stats counts what the device did.
type Stats struct {
	Reads, Writes, Flushes, IDs uint64
	BytesRead, BytesWritten     uint64
	Errors                      uint64 // requests completed with IOERR or UNSUPP
	Malformed                   uint64 // chains with no status byte, completed with length 0
}

// Device is a virtio-blk device.
type Device struct {
	cfg     Config
	sectors uint64
	config  [configSize]byte

	qs atomic.Pointer[virtio.Queues] // set while active

	mu    sync.Mutex
	stats Stats // guarded by mu
}

// New returns a device serving cfg.Backend.
func New(cfg Config) (*Device, error) {
	if cfg.Size < 0 {
		return nil, fmt.Errorf("virtio-blk: negative size %d", cfg.Size)
	}
	if len(cfg.ID) > IDBytes {
		return nil, fmt.Errorf("virtio-blk: id %q is longer than %d bytes", cfg.ID, IDBytes)
	}
	d := &Device{cfg: cfg, sectors: uint64(cfg.Size) / SectorSize}
	le := binary.LittleEndian
	le.PutUint64(d.config[0:], d.sectors)
	le.PutUint32(d.config[12:], QueueSize-2) // seg_max: all but header and status
	le.PutUint32(d.config[20:], SectorSize)  // blk_size
	return d, nil
}

// Open opens the file at path as a disk; read-only opens it O_RDONLY.
// The caller closes the returned file after the device is gone.
func Open(path string, readOnly bool, id string) (*Device, *os.File, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("virtio-blk: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("virtio-blk: %w", err)
	}
	d, err := New(Config{Backend: f, Size: fi.Size(), ReadOnly: readOnly, ID: id})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return d, f, nil
}

// Type implements virtio.Device.
func (d *Device) Type() uint32 { return virtio.TypeBlock }

// Features implements virtio.Device.
func (d *Device) Features() uint64 {
	f := uint64(featureSegMax | featureFlush)
	if d.cfg.ReadOnly {
		f |= featureRO
	}
	return f
}

// QueueSizes implements virtio.Device.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize} }

// ReadConfig implements virtio.Device.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < configSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig implements virtio.Device: the configuration is read-only
// (no writeback-cache toggle is offered).
func (d *Device) WriteConfig(uint64, []byte) {}

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
