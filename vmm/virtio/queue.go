// Package virtio implements the device side of virtio split virtqueues
// (virtio 1.2, section 2.7) over guest memory that the guest controls and
// may change at any moment.
//
// Everything read from a ring is hostile. The walker copies each descriptor
// once before validating it, checks every index against the queue size,
// bounds every chain, confines every buffer to RAM with overflow-checked
// arithmetic and never sizes a host allocation from a guest value. A chain
// that breaks a rule is completed with used length 0 and skipped, so one bad
// request costs the guest that request and nothing else; only a driver that
// claims more pending entries than the ring holds breaks the whole queue,
// which then needs a device reset.
package virtio

import (
	"errors"
	"fmt"

	"github.com/huskrt/husk/vmm/memory"
)

// MaxQueueSize is the largest split-ring size the virtio spec allows.
const MaxQueueSize = 32768

// Ring layout sizes, in bytes, for a queue of n entries (virtio 1.2, 2.7).
const (
	descSize       = 16 // struct virtq_desc
	ringHeaderSize = 4  // flags, idx
	usedElemSize   = 8  // struct virtq_used_elem
)

// Errors about the queue's configuration, reported by New.
var (
	ErrQueueSize      = errors.New("queue size is not a power of two in [1, 32768]")
	ErrRingAlignment  = errors.New("ring is misaligned")
	ErrRingPlacement  = errors.New("ring is not inside guest RAM")
	ErrQueueBroken    = errors.New("virtqueue is broken and needs a device reset")
	ErrAvailWindow    = errors.New("available index is more than the queue size ahead")
	errRingUnreadable = errors.New("ring access failed")
)

// Config is a queue as the driver set it up through the transport. The
// addresses are guest physical and, like everything else here, hostile.
type Config struct {
	Size      uint16 // number of entries: a power of two, at most MaxQueueSize
	DescTable uint64 // 16-byte aligned, 16*Size bytes
	AvailRing uint64 // 2-byte aligned, 4+2*Size bytes
	UsedRing  uint64 // 4-byte aligned, 4+8*Size bytes

	// Indirect says VIRTIO_F_RING_INDIRECT_DESC was negotiated; without it,
	// an indirect descriptor makes its chain malformed.
	Indirect bool

	// OnMalformed, when set, is told about each chain that was completed
	// with length 0 instead of reaching the device. It runs on the
	// goroutine that called Pop; it is for logging and tests.
	OnMalformed func(head uint16, err error)
}

// Stats counts what a queue has seen.
type Stats struct {
	Chains    uint64 // well-formed chains handed to the device
	Malformed uint64 // chains completed with length 0 by the walker
}

// Queue is the device side of one split virtqueue. It is not safe for
// concurrent use: one device goroutine owns it.
type Queue struct {
	mem *memory.Memory
	cfg Config

	lastAvail uint16 // next available-ring slot to consume (free-running)
	nextUsed  uint16 // next used-ring slot to fill (free-running)
	broken    error  // sticky: set once the driver broke the ring protocol
	stats     Stats
}

// New validates the queue's placement in mem and returns a queue whose
// indexes start at 0, as after a device reset.
func New(mem *memory.Memory, cfg Config) (*Queue, error) {
	n := uint64(cfg.Size)
	if n == 0 || n > MaxQueueSize || n&(n-1) != 0 {
		return nil, fmt.Errorf("%w: %d", ErrQueueSize, cfg.Size)
	}
	rings := []struct {
		name  string
		addr  uint64
		align uint64
		size  uint64
	}{
		{"descriptor table", cfg.DescTable, 16, descSize * n},
		{"available ring", cfg.AvailRing, 2, ringHeaderSize + 2*n},
		{"used ring", cfg.UsedRing, 4, ringHeaderSize + usedElemSize*n},
	}
	for _, r := range rings {
		if r.addr%r.align != 0 {
			return nil, fmt.Errorf("%w: %s at %#x, want %d-byte alignment", ErrRingAlignment, r.name, r.addr, r.align)
		}
		if !mem.Contains(r.addr, r.size) {
			return nil, fmt.Errorf("%w: %s [%#x, +%#x)", ErrRingPlacement, r.name, r.addr, r.size)
		}
	}
	return &Queue{mem: mem, cfg: cfg}, nil
}

// Size returns the number of entries in the queue.
func (q *Queue) Size() uint16 { return q.cfg.Size }

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats { return q.stats }

// UsedIndex returns the used ring's index as the device last published it
// (free-running): it changes exactly when Push completes a chain.
func (q *Queue) UsedIndex() uint16 { return q.nextUsed }

// Err returns the error that broke the queue, or nil.
func (q *Queue) Err() error { return q.broken }

// breakQueue records a protocol violation that makes the ring unusable.
func (q *Queue) breakQueue(err error) error {
	q.broken = fmt.Errorf("%w: %w", ErrQueueBroken, err)
	return q.broken
}
