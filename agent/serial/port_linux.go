package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PortName is the name of the agent's virtio-serial port: QEMU's
// `-device virtserialport,name=husk.agent`.
const PortName = "husk.agent"

// virtioPorts is where the kernel lists virtio-serial ports, each with
// its name (which the host gives the port a moment after it appears).
const virtioPorts = "/sys/class/virtio-ports"

// hostCheck is how often a port with no host connected is looked at again
// in case its wake-up was missed (see waitHost).
const hostCheck = time.Second

// FindPort returns the device of the virtio-serial port named name
// (/dev/vportNpM, which devtmpfs creates: the guest has no udev), or an
// error wrapping os.ErrNotExist.
func FindPort(name string) (string, error) {
	entries, err := os.ReadDir(virtioPorts)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(virtioPorts, e.Name(), "name"))
		if err != nil || strings.TrimSpace(string(b)) != name {
			continue
		}
		return filepath.Join("/dev", e.Name()), nil
	}
	return "", fmt.Errorf("no virtio-serial port named %q: %w", name, os.ErrNotExist)
}

// WaitPort waits up to timeout for the port named name to appear (the
// virtio_console driver adds ports, and learns their names, after it
// loads).
func WaitPort(ctx context.Context, name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		path, err := FindPort(name)
		if err == nil {
			if _, err = os.Stat(path); err == nil {
				return path, nil
			}
		}
		if time.Now().After(deadline) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DevicePort opens the virtio-serial port device at path for Serve, once
// a host is connected to it. The port has one opener at a time; closing
// it drops what the previous host sent and the guest did not read.
func DevicePort(path string) Opener {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			return nil, err
		}
		if err := waitHost(ctx, f); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// waitHost waits until a host is connected to the port f. The driver
// (virtio_console) reports POLLHUP while none is, and wakes the port's
// pollers when one connects, when the port becomes writable: so the wait
// is for write readiness through Go's poller, checking for POLLHUP each
// time it wakes. A wake-up missed would cost hostCheck.
func waitHost(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	defer f.SetWriteDeadline(time.Time{})
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var perr error
		connected := false
		_ = f.SetWriteDeadline(time.Now().Add(hostCheck))
		err := rc.Write(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			_, e := unix.Poll(fds, 0)
			switch {
			case errors.Is(e, unix.EINTR):
				return false
			case e != nil:
				perr = e
				return true
			case fds[0].Revents&(unix.POLLNVAL|unix.POLLERR) != 0:
				perr = fmt.Errorf("port %s: poll events %#x", f.Name(), fds[0].Revents)
				return true
			}
			connected = fds[0].Revents&unix.POLLHUP == 0
			return connected
		})
		if perr != nil {
			return perr
		}
		if connected {
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
}
