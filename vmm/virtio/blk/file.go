package blk

import (
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

var (
	// ErrLocked reports a disk image another user holds: a writer, or
	// readers when a writer asks.
	ErrLocked = errors.New("virtio-blk: disk image is locked by another user")
	// ErrNotADisk reports a file that is neither a regular file nor a
	// block device.
	ErrNotADisk = errors.New("virtio-blk: not a regular file or a block device")
	// ErrAccessMode reports a writable disk on a file not opened O_RDWR.
	ErrAccessMode = errors.New("virtio-blk: file is not open for writing")
)

// OpenLocked opens the disk image at path (O_RDONLY for a read-only disk,
// O_RDWR otherwise) and takes a non-blocking flock on it: shared for a
// read-only disk, exclusive for a writable one. So any number of VMs may
// read an image, but one that writes it has it alone; a lock held
// elsewhere is an error wrapping ErrLocked. The lock belongs to the open
// file description: it lasts while any descriptor of it (one passed to
// another process included) stays open, and goes with the last. flock is
// advisory: it keeps out users that lock too (husk's VMM, QEMU), not
// others.
func OpenLocked(path string, readOnly bool) (*os.File, error) {
	flag, how := os.O_RDWR, unix.LOCK_EX
	if readOnly {
		flag, how = os.O_RDONLY, unix.LOCK_SH
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("virtio-blk: %w", err)
	}
	if err := flock(f, how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("virtio-blk: lock %s: %w", path, err)
	}
	return f, nil
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if ferr = unix.Flock(int(fd), how); ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// Size returns the size of a disk image in bytes: a regular file's length
// (stat), a block device's (the BLKGETSIZE64 ioctl; stat says 0 for one).
func Size(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("virtio-blk: %w", err)
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		return fi.Size(), nil
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		return blockDeviceSize(f)
	default:
		return 0, fmt.Errorf("%w: %s is %v", ErrNotADisk, f.Name(), m.Type())
	}
}

func blockDeviceSize(f *os.File) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("virtio-blk: %w", err)
	}
	var size uint64
	var ierr error
	if err := rc.Control(func(fd uintptr) { size, ierr = unix.IoctlGetUint64(int(fd), unix.BLKGETSIZE64) }); err != nil {
		return 0, fmt.Errorf("virtio-blk: %w", err)
	}
	if ierr != nil {
		return 0, fmt.Errorf("virtio-blk: BLKGETSIZE64 %s: %w", f.Name(), ierr)
	}
	if size > math.MaxInt64 {
		return 0, fmt.Errorf("virtio-blk: %s: block device of %d bytes", f.Name(), size)
	}
	return int64(size), nil
}

// FileConfig describes a disk on an open file (a regular file or a block
// device), sized with Size. A writable disk needs a file opened O_RDWR
// (ErrAccessMode); a read-only one may be on a file opened either way. It does not lock: the
// file should come from OpenLocked, here or in the process that passed it.
func FileConfig(f *os.File, readOnly bool, id string) (Config, error) {
	if !readOnly {
		mode, err := accessMode(f)
		if err != nil {
			return Config{}, err
		}
		if mode != unix.O_RDWR {
			return Config{}, fmt.Errorf("%w: %s", ErrAccessMode, f.Name())
		}
	}
	size, err := Size(f)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Backend: f, Size: size, ReadOnly: readOnly, ID: id}
	return cfg, checkConfig(cfg)
}

func accessMode(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("virtio-blk: %w", err)
	}
	var fl int
	var ferr error
	if err := rc.Control(func(fd uintptr) { fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		return 0, fmt.Errorf("virtio-blk: %w", err)
	}
	if ferr != nil {
		return 0, fmt.Errorf("virtio-blk: F_GETFL %s: %w", f.Name(), ferr)
	}
	return fl & unix.O_ACCMODE, nil
}

// Open opens and locks the disk image at path (OpenLocked) and returns a
// device that owns the file: the device's Close closes it.
func Open(path string, readOnly bool, id string) (*Device, error) {
	f, err := OpenLocked(path, readOnly)
	if err != nil {
		return nil, err
	}
	cfg, err := FileConfig(f, readOnly, id)
	if err != nil {
		f.Close()
		return nil, err
	}
	d, err := New(cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}
