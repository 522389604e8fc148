package blk

import (
	"errors"
	"fmt"
	"io"
)

// SetBackend gives the device cfg.Backend in place of whatever it had (an
// empty slot, or another backend, which it retires: synced if the disk is
// writable, then closed), and tells the driver through the transport: the
// capacity and the id change, the read-only-ness cannot (cfg.ReadOnly must
// be the device's, else ErrReadOnlyMismatch). It waits for the request in
// progress, if any: each request is served wholly against the old backend
// or wholly against the new one, and the old one is closed only after its
// last request. On error the device is unchanged and cfg.Backend stays the
// caller's; once the new backend is in place, the error is the old one's
// retirement (the swap has happened).
func (d *Device) SetBackend(cfg Config) error {
	if cfg.Backend == nil {
		return ErrNoBackend
	}
	if err := checkConfig(cfg); err != nil {
		return err
	}
	if cfg.ReadOnly != d.readOnly {
		return fmt.Errorf("%w: device read-only %v, backend read-only %v", ErrReadOnlyMismatch, d.readOnly, cfg.ReadOnly)
	}
	return d.swap(cfg)
}

// Clear empties the device, retiring its backend as SetBackend does: the
// guest sees capacity 0 and an empty id, and reads and writes fail. The
// error, if any, is the old backend's sync or close; the device is empty
// regardless. Clearing an empty device does nothing.
func (d *Device) Clear() error {
	return d.swap(Config{ReadOnly: d.readOnly})
}

// Close retires the backend, like Clear. The transport must be closed
// first (no request can arrive).
func (d *Device) Close() error { return d.Clear() }

// swap replaces the backend and notifies the transport, under the
// exclusive lock (so no request is in progress and the configuration
// change and the generation move together), then retires the old backend
// outside it.
func (d *Device) swap(cfg Config) error {
	d.io.Lock()
	old := d.backend
	if old == nil && cfg.Backend == nil {
		d.io.Unlock()
		return nil
	}
	d.setLocked(cfg)
	if d.changed != nil {
		d.changed()
	}
	d.io.Unlock()
	return d.retire(old)
}

// retire syncs a writable disk's old backend (so that a flush the guest
// issues after the swap, which finds the new backend or none, covers every
// write the old one completed) and closes it.
func (d *Device) retire(b Backend) error {
	if b == nil {
		return nil
	}
	var errs []error
	if !d.readOnly {
		if err := b.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("virtio-blk: sync the old backend: %w", err))
		}
	}
	if c, ok := b.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("virtio-blk: close the old backend: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ID returns the id of the device's backend ("" when empty).
func (d *Device) ID() string {
	d.io.RLock()
	defer d.io.RUnlock()
	return d.idStr
}

// Empty says whether the device has no backend.
func (d *Device) Empty() bool {
	d.io.RLock()
	defer d.io.RUnlock()
	return d.backend == nil
}
