package qemu

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/vmm/virtio/blk"
)

// AttachDisk plugs the disk at path into a free slot's PCIe root port as a
// virtio-blk device with serial. The shim opens and locks the file
// (blk.OpenLocked: shared for a read-only disk, exclusive otherwise) and
// passes the descriptor over QMP (add-fd): QEMU never opens a host path,
// and the lock lasts while QEMU holds it. The guest learns of the device
// by the port's hot-plug interrupt; the agent finds it by serial.
func (v *vm) AttachDisk(ctx context.Context, path string, readOnly bool, serial string) error {
	if serial == "" || len(serial) > maxSerial || strings.IndexByte(serial, 0) >= 0 {
		return fmt.Errorf("qemu: attach: %w: serial %q: want 1 to %d bytes without NUL", errdefs.ErrInvalidArgument, serial, maxSerial)
	}
	q, err := v.client()
	if err != nil {
		return fmt.Errorf("qemu: attach %s: %w", path, err)
	}
	i, err := v.claimSlot(serial)
	if err != nil {
		return fmt.Errorf("qemu: attach %s: %w", path, err)
	}
	if err := v.plug(ctx, q, i, path, readOnly, serial); err != nil {
		v.setSlot(i, slot{})
		return fmt.Errorf("qemu: attach %s as %q: %w", path, serial, err)
	}
	v.setSlot(i, slot{serial: serial, state: slotAttached})
	return nil
}

// claimSlot marks a free slot as being attached for serial.
func (v *vm) claimSlot(serial string) (int, error) {
	v.diskMu.Lock()
	defer v.diskMu.Unlock()
	free := -1
	for i, s := range v.slots {
		if s.state != slotFree && s.serial == serial {
			return 0, fmt.Errorf("%w: a disk with serial %q", errdefs.ErrAlreadyExists, serial)
		}
		if s.state == slotFree && free < 0 {
			free = i
		}
	}
	if free < 0 {
		return 0, virt.ErrNoFreeSlot
	}
	v.slots[free] = slot{serial: serial, state: slotAttaching}
	return free, nil
}

func (v *vm) setSlot(i int, s slot) {
	v.diskMu.Lock()
	v.slots[i] = s
	v.diskMu.Unlock()
}

// plug adds slot i's descriptor, block node and device, undoing what it
// did if a step fails.
func (v *vm) plug(ctx context.Context, q *qmpClient, i int, path string, readOnly bool, serial string) (err error) {
	f, err := blk.OpenLocked(path, readOnly)
	if err != nil {
		return err
	}
	defer f.Close() // QEMU holds its own descriptor of it now
	// A descriptor left in the set by a detach that failed half-way.
	_, _ = q.execute(ctx, "remove-fd", map[string]any{"fdset-id": fdsetID(i)}, nil)
	if _, err := q.execute(ctx, "add-fd", map[string]any{"fdset-id": fdsetID(i), "opaque": "husk " + serial}, []int{int(f.Fd())}); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = q.execute(context.WithoutCancel(ctx), "remove-fd", map[string]any{"fdset-id": fdsetID(i)}, nil)
		}
	}()
	if _, err := q.execute(ctx, "blockdev-add", map[string]any{
		"driver": "raw", "node-name": nodeName(i), "read-only": readOnly,
		"file": map[string]any{
			"driver": "file", "filename": fmt.Sprintf("/dev/fdset/%d", fdsetID(i)),
			"read-only": readOnly, "locking": "off", // the shim's flock is the lock
		},
	}, nil); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = q.execute(context.WithoutCancel(ctx), "blockdev-del", map[string]any{"node-name": nodeName(i)}, nil)
		}
	}()
	// A deletion reported for the slot's previous device is not this one's.
	v.mu.Lock()
	delete(v.deleted, deviceID(i))
	v.mu.Unlock()
	_, err = q.execute(ctx, "device_add", map[string]any{
		"driver": "virtio-blk-pci", "id": deviceID(i), "bus": portID(i), "drive": nodeName(i),
		"serial": serial, "disable-legacy": "on",
	}, nil)
	return err
}

// DetachDisk unplugs the disk with serial: device_del, then, once the
// guest has let the device go (QEMU's DEVICE_DELETED event, waited for as
// long as ctx allows), its block node and descriptor. If ctx ends first
// the slot stays taken and a later DetachDisk waits again.
func (v *vm) DetachDisk(ctx context.Context, serial string) error {
	q, err := v.client()
	if err != nil {
		return fmt.Errorf("qemu: detach %q: %w", serial, err)
	}
	v.diskMu.Lock()
	i := -1
	for j, s := range v.slots {
		if s.serial == serial && (s.state == slotAttached || s.state == slotDetaching) {
			i = j
		}
	}
	if i < 0 {
		v.diskMu.Unlock()
		return fmt.Errorf("qemu: detach: %w: no disk with serial %q", errdefs.ErrNotFound, serial)
	}
	retry := v.slots[i].state == slotDetaching
	v.slots[i].state = slotDetaching
	v.diskMu.Unlock()

	gone := v.deletedChan(deviceID(i))
	if !retry {
		_, err := q.execute(ctx, "device_del", map[string]any{"id": deviceID(i)}, nil)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			// Gone already: the guest ejected it.
			v.closeDeleted(deviceID(i))
		case err != nil:
			v.setSlot(i, slot{serial: serial, state: slotAttached})
			return fmt.Errorf("qemu: detach %q: %w", serial, err)
		}
	}
	select {
	case <-gone:
	case <-v.done:
		return fmt.Errorf("qemu: detach %q: %w", serial, ErrVMEnded)
	case <-ctx.Done():
		return fmt.Errorf("qemu: detach %q: the guest has not released the device: %w", serial, ctx.Err())
	}
	var errs []error
	if _, err := q.execute(ctx, "blockdev-del", map[string]any{"node-name": nodeName(i)}, nil); err != nil {
		errs = append(errs, err)
	}
	if _, err := q.execute(ctx, "remove-fd", map[string]any{"fdset-id": fdsetID(i)}, nil); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		// The device is gone from the guest, but QEMU may still hold the
		// file: the slot is not reused.
		return fmt.Errorf("qemu: detach %q: %w", serial, err)
	}
	v.mu.Lock()
	delete(v.deleted, deviceID(i))
	v.mu.Unlock()
	v.setSlot(i, slot{})
	return nil
}

// closeDeleted marks device id deleted.
func (v *vm) closeDeleted(id string) {
	c := v.deletedChan(id)
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// deletedChan is closed when QEMU reports device id deleted.
func (v *vm) deletedChan(id string) chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.deleted[id]
	if !ok {
		c = make(chan struct{})
		v.deleted[id] = c
	}
	return c
}
