// Package rootfs mounts the root filesystem containerd prepared for a
// container (usually an overlay snapshot) and removes it again.
package rootfs

import (
	"errors"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
)

// Mounted is a rootfs husk mounted and must unmount.
type Mounted struct {
	Target string
}

// Mount mounts ms, in order, on target (which must exist).
func Mount(ms []mount.Mount, target string) (*Mounted, error) {
	if _, err := os.Stat(target); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("rootfs mount point %s does not exist: %w", target, errdefs.ErrNotFound)
		}
		return nil, err
	}
	if err := mount.All(ms, target); err != nil {
		// mount.All may have mounted some before failing.
		_ = mount.UnmountRecursive(target, 0)
		return nil, fmt.Errorf("mounting rootfs on %s: %w", target, err)
	}
	return &Mounted{Target: target}, nil
}

// Unmount removes every mount on the target, stacked ones included.
func (m *Mounted) Unmount() error {
	if err := mount.UnmountRecursive(m.Target, 0); err != nil {
		return fmt.Errorf("unmounting rootfs %s: %w", m.Target, err)
	}
	return nil
}

// Check reports a clear error when an already-present rootfs is missing.
func Check(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("rootfs %s does not exist: %w", path, errdefs.ErrNotFound)
	case err != nil:
		return fmt.Errorf("rootfs %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("rootfs %s is not a directory: %w", path, errdefs.ErrInvalidArgument)
	}
	return nil
}
