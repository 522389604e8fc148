package vmm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/huskrt/husk/vmm/virtio/blk"
)

var (
	// ErrNoFreeSlot reports AttachDisk with every disk slot taken (or
	// none of the read-only-ness the disk needs).
	ErrNoFreeSlot = errors.New("no free disk slot")
	// ErrDiskExists reports AttachDisk with an id another disk has.
	ErrDiskExists = errors.New("a disk with this id is attached")
	// ErrDiskNotFound reports DetachDisk with an id no slot holds.
	ErrDiskNotFound = errors.New("no disk with this id in a slot")
	// ErrBadDisk reports a disk AttachDisk cannot take: its id or its
	// file.
	ErrBadDisk = errors.New("disk cannot be attached")
)

// AttachDisk puts the disk on f into the first empty slot
// (Config.DiskSlots) and tells the guest, which sees the slot's capacity
// change from 0 and id as the disk's serial (Linux:
// /sys/block/vdX/serial). The VM takes f over on success and closes it on
// DetachDisk or Close; on error f stays the caller's. f is a regular file
// or a block device, opened (and locked: blk.OpenLocked) by the caller,
// which may be another process that passed the descriptor: the VM does
// not need to be able to open host paths. The disk must be read-only
// (slots are; an error wrapping ErrNoFreeSlot otherwise) and at least a
// sector long, and id 1 to 20 bytes without NUL, unique among the VM's
// disks (ErrBadDisk, ErrDiskExists). It may be called while the VM runs,
// from any goroutine.
func (v *VM) AttachDisk(f *os.File, readOnly bool, id string) error {
	return v.slots.attach(f, readOnly, id)
}

// DetachDisk empties the slot holding the disk id (ErrDiskNotFound if
// none) and closes its file once no request uses it. The guest sees the
// capacity drop to 0 and every request fail from then on, so it must
// have stopped using the disk (unmounted it) first. The error, if any, is
// the file's close; the slot is empty regardless.
func (v *VM) DetachDisk(id string) error {
	return v.slots.detach(id)
}

// slotTable is the VM's disks as AttachDisk and DetachDisk see them.
type slotTable struct {
	log *slog.Logger

	mu     sync.Mutex    // serialises attach, detach and close
	boot   []*blk.Device // the boot disks, whose ids slots must not repeat
	slots  []*blk.Device // the slots; their backends change only under mu
	closed bool          // guarded by mu
}

func (t *slotTable) attach(f *os.File, readOnly bool, id string) error {
	if err := checkDiskID(id); err != nil {
		return err
	}
	cfg, err := blk.FileConfig(f, readOnly, id)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDisk, err)
	}
	if cfg.Size < blk.SectorSize {
		return fmt.Errorf("%w: %s has %d bytes, less than a sector", ErrBadDisk, f.Name(), cfg.Size)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("%w: the VM is closed", ErrState)
	}
	for _, d := range slices.Concat(t.boot, t.slots) {
		if d.ID() == id {
			return fmt.Errorf("%w: %q", ErrDiskExists, id)
		}
	}
	free, other := -1, 0
	for i, d := range t.slots {
		if !d.Empty() {
			continue
		}
		if d.ReadOnly() != readOnly {
			other++
		} else if free < 0 {
			free = i
		}
	}
	switch {
	case free < 0 && other > 0:
		return fmt.Errorf("%w: %d free slots, none with read-only %v (a driver learns it once, when it probes)", ErrNoFreeSlot, other, readOnly)
	case free < 0:
		return fmt.Errorf("%w: all %d in use", ErrNoFreeSlot, len(t.slots))
	}
	if err := t.slots[free].SetBackend(cfg); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDisk, err)
	}
	t.log.Info("disk attached", "id", id, "slot", free, "bytes", cfg.Size, "read_only", readOnly)
	return nil
}

func (t *slotTable) detach(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("%w: the VM is closed", ErrState)
	}
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrDiskNotFound)
	}
	for i, d := range t.slots {
		if d.ID() != id {
			continue
		}
		err := d.Clear()
		t.log.Info("disk detached", "id", id, "slot", i, "err", err)
		if err != nil {
			return fmt.Errorf("detach %q: %w", id, err)
		}
		return nil
	}
	for _, d := range t.boot {
		if d.ID() == id {
			return fmt.Errorf("%w: %q is a boot disk", ErrDiskNotFound, id)
		}
	}
	return fmt.Errorf("%w: %q", ErrDiskNotFound, id)
}

// close stops attach and detach; the devices close their files.
func (t *slotTable) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// checkDiskID accepts what a guest reads back whole as a serial: 1 to 20
// bytes (VIRTIO_BLK_ID_BYTES, NUL-padded) with no NUL, which would cut it
// short.
func checkDiskID(id string) error {
	if id == "" || len(id) > blk.IDBytes || strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("%w: id %q: want 1 to %d bytes without NUL", ErrBadDisk, id, blk.IDBytes)
	}
	return nil
}
