package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// channel is how the host reaches the agent's ports in one VM. Start
// chooses one kind before QEMU starts: vhost-vsock where the host has
// /dev/vhost-vsock, else a virtio-serial port carrying the ports
// multiplexed (agent/serial). It adds its devices to QEMU's command line
// and dials ports for VM.Dial.
type channel interface {
	// kind names it in logs and errors.
	kind() string
	// devices are the QEMU arguments that add its devices, and the
	// descriptors QEMU inherits for them: the first is fd firstFD in
	// QEMU, the next firstFD+1, and so on.
	devices(firstFD int) (args []string, files []*os.File)
	// started is called once QEMU has inherited the descriptors (or
	// failed to start): the shim closes its copies of them.
	started()
	// dial connects to guest port, bounded by ctx.
	dial(ctx context.Context, port uint32) (net.Conn, error)
	// close releases what the channel holds on the host once QEMU has
	// exited (or never started).
	close() error
}

// vhostVsockPath is the host's vhost-vsock device.
const vhostVsockPath = "/dev/vhost-vsock"

// newChannel chooses the agent channel for a VM: vhost-vsock where the
// host has it, else virtio-serial.
func newChannel() (channel, error) {
	if _, err := os.Stat(vhostVsockPath); err == nil {
		return openVsock()
	}
	return openSerial()
}

// vsockChannel is a vhost-vsock device: the host opens /dev/vhost-vsock,
// claims a free context id (CID) on it and hands the descriptor to QEMU
// (vhostfd), so that QEMU needs no access to the device and two VMs
// cannot race for one CID: the CID is this descriptor's while it is open.
type vsockChannel struct {
	vhost *os.File
	cid   uint32
}

// vhostVsockSetGuestCID is VHOST_VSOCK_SET_GUEST_CID, _IOW(0xAF, 0x60, __u64).
const vhostVsockSetGuestCID = 0x4008af60

// firstCID is the lowest CID a guest may have (0-2 are the hypervisor's,
// the local loopback's and the host's).
const firstCID = 3

// cidTries bounds the search for a free CID.
const cidTries = 64

func openVsock() (*vsockChannel, error) {
	f, err := os.OpenFile(vhostVsockPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vhost-vsock: %w", err)
	}
	for i := 0; i < cidTries; i++ {
		cid := randomCID()
		err = setGuestCID(f, cid)
		if err == nil {
			return &vsockChannel{vhost: f, cid: cid}, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	f.Close()
	return nil, fmt.Errorf("vhost-vsock: claiming a guest CID: %w", err)
}

func setGuestCID(f *os.File, cid uint32) error {
	v := uint64(cid)
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = ioctlPtr(int(fd), vhostVsockSetGuestCID, &v)
	}); err != nil {
		return err
	}
	return ioErr
}

func (c *vsockChannel) kind() string { return "vhost-vsock" }

// started closes the shim's copy of the vhost descriptor: QEMU's holds
// the CID for as long as QEMU runs.
func (c *vsockChannel) started() { c.vhost.Close() }

func (c *vsockChannel) devices(firstFD int) ([]string, []*os.File) {
	return []string{"-device", fmt.Sprintf("vhost-vsock-pci,id=vsock,guest-cid=%d,vhostfd=%d,disable-legacy=on", c.cid, firstFD)},
		[]*os.File{c.vhost}
}

// dial connects to the guest's port. A connect to a guest that has not
// yet brought up its transport takes up to the kernel's vsock connect
// timeout (2 s); a caller that gives up first gets its error at once and
// the connection, if it comes, is closed.
func (c *vsockChannel) dial(ctx context.Context, port uint32) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		conn, err := vsock.Dial(c.cid, port, nil)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		ch <- result{conn, nil}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func (c *vsockChannel) close() error {
	c.vhost.Close() // closed already once QEMU started
	return nil
}
