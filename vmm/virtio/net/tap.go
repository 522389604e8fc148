package net

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenTap attaches to the tap device name (creating it if it does not
// exist and the process may) as a frame backend: IFF_TAP | IFF_NO_PI, no
// vnet header (the device strips and adds the virtio-net header itself).
// The file is non-blocking and read through the Go runtime's poller, so
// Close wakes a Read in progress.
func OpenTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %q: TUNSETIFF: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tap:"+name), nil
}

// TapFile is a frame backend over f, a tap queue opened elsewhere (by a
// process that could enter the tap's network namespace) with IFF_TAP |
// IFF_NO_PI and no vnet header. It returns a duplicate, non-blocking and
// read through the poller as OpenTap's file is; the caller keeps f.
func TapFile(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tap %s: %w", f.Name(), err)
	}
	var fd int
	var dupErr error
	if err := sc.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("tap %s: %w", f.Name(), err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("tap %s: dup: %w", f.Name(), dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
