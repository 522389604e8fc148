package qemu

import (
	"context"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/serial"
)

// serialChannel is a virtio-serial port named serial.PortName whose host
// end is one end of a socketpair QEMU inherits (a chardev socket on fd=),
// carrying one agent/serial session: the agent's ports multiplexed with
// yamux, for hosts without vhost-vsock. No socket path exists for anyone
// else to connect to. The session lasts as long as the VM: one that the
// guest breaks is not started again, and Dial then fails with why.
type serialChannel struct {
	qemuEnd *os.File // QEMU's end, until QEMU has inherited it
	session *serial.Session
}

func openSerial() (*serialChannel, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("virtio-serial socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "agent-serial")
	defer ours.Close()
	conn, err := net.FileConn(ours)
	if err != nil {
		unix.Close(fds[1])
		return nil, fmt.Errorf("virtio-serial socketpair: %w", err)
	}
	s, err := serial.New(conn)
	if err != nil {
		conn.Close()
		unix.Close(fds[1])
		return nil, err
	}
	return &serialChannel{qemuEnd: os.NewFile(uintptr(fds[1]), "agent-serial"), session: s}, nil
}

func (c *serialChannel) kind() string { return "virtio-serial" }

func (c *serialChannel) devices(firstFD int) ([]string, []*os.File) {
	return []string{
		"-chardev", fmt.Sprintf("socket,id=agent,fd=%d", firstFD),
		"-device", "virtio-serial-pci,id=vser,disable-legacy=on,max_ports=2",
		"-device", "virtserialport,bus=vser.0,chardev=agent,name=" + serial.PortName,
	}, []*os.File{c.qemuEnd}
}

// started closes the shim's copy of QEMU's end: when QEMU exits, the
// session sees the end of its connection.
func (c *serialChannel) started() { c.qemuEnd.Close() }

func (c *serialChannel) dial(ctx context.Context, port uint32) (net.Conn, error) {
	return c.session.Dial(ctx, port)
}

func (c *serialChannel) close() error {
	c.qemuEnd.Close()
	return c.session.Close()
}
