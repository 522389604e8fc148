package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

// diskWait bounds the wait for a disk the host attached to a running VM:
// the guest's driver learns its capacity from a config-change interrupt,
// in a workqueue, a moment after its serial already answers.
const diskWait = 5 * time.Second

// diskFinder finds the device node of a virtio-blk disk by its serial.
type diskFinder struct {
	sysBlock string // where block devices are listed
	dev      string // where their nodes are
	// open checks that a node can be opened: between the disk appearing in
	// sysfs (with its node) and its block device going live the kernel
	// answers ENXIO, and a mount in that window fails.
	open func(path string) error
	wait time.Duration
}

func openReadOnly(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// findDisk returns the device node of the virtio-blk disk whose serial is
// serial (what the host gave it: the guest reads it with GET_ID), once the
// disk has a capacity and its node opens.
func findDisk(serial string) (string, error) {
	return diskFinder{sysBlock: "/sys/block", dev: "/dev", open: openReadOnly, wait: diskWait}.find(serial)
}

func (f diskFinder) find(serial string) (string, error) {
	deadline := time.Now().Add(f.wait)
	for {
		entries, err := os.ReadDir(f.sysBlock)
		if err != nil {
			return "", err
		}
		var notYet error
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(f.sysBlock, e.Name(), "serial"))
			if err != nil || strings.TrimSpace(string(b)) != serial {
				continue
			}
			size, err := os.ReadFile(filepath.Join(f.sysBlock, e.Name(), "size"))
			if err != nil || strings.TrimSpace(string(size)) == "0" {
				notYet = errors.New("it has no capacity yet")
				continue
			}
			node := filepath.Join(f.dev, e.Name())
			switch err := f.open(node); {
			case err == nil:
				return node, nil
			case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENOENT):
				notYet = fmt.Errorf("%s does not open yet: %w", node, err)
			default:
				return "", fmt.Errorf("opening disk %q (%s): %w", serial, node, err)
			}
		}
		if time.Now().After(deadline) {
			if notYet == nil {
				notYet = errors.New("no such serial")
			}
			return "", fmt.Errorf("no usable disk with serial %q after %v (%v): %w", serial, f.wait, notYet, errdefs.ErrNotFound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mountedRootfs is a container's root filesystem mounted in its bundle:
// the disk, and above it (unless read-only) an overlay whose writable
// layer is a tmpfs of the container's own.
type mountedRootfs struct {
	path   string   // the root the container gets
	mounts []string // to unmount, last first
}

// mountRootfs mounts the disk r names, found by find, under bundle.
func mountRootfs(r *api.Rootfs, bundle string, find func(string) (string, error)) (_ *mountedRootfs, retErr error) {
	dev, err := find(r.DiskSerial)
	if err != nil {
		return nil, err
	}
	m := &mountedRootfs{}
	defer func() {
		if retErr != nil {
			_ = m.unmount()
		}
	}()
	lower := filepath.Join(bundle, "lower")
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{lower, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := append([]string{"ro"}, r.Options...)
	if err := (&mount.Mount{Type: r.Fstype, Source: dev, Options: opts}).Mount(lower); err != nil {
		return nil, fmt.Errorf("mounting disk %s (%s) as %s: %w", r.DiskSerial, dev, r.Fstype, err)
	}
	m.mounts = append(m.mounts, lower)
	if r.Readonly {
		if err := unix.Mount(lower, root, "", unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return nil, fmt.Errorf("binding the rootfs: %w", err)
		}
		m.mounts = append(m.mounts, root)
		m.path = root
		return m, nil
	}
	scratch := filepath.Join(bundle, "scratch")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, err
	}
	if err := unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "mode=0700"); err != nil {
		return nil, fmt.Errorf("mounting the writable layer: %w", err)
	}
	m.mounts = append(m.mounts, scratch)
	upper, work := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", root, "overlay", 0, data); err != nil {
		return nil, fmt.Errorf("mounting the rootfs overlay: %w", err)
	}
	m.mounts = append(m.mounts, root)
	m.path = root
	return m, nil
}

// unmount undoes mountRootfs, the last mount first.
func (m *mountedRootfs) unmount() error {
	var errs []error
	for i := len(m.mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(m.mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m.mounts[i], err))
		}
	}
	m.mounts = nil
	return errors.Join(errs...)
}
