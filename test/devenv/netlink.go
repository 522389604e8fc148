package devenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// deleteLink deletes the network interface name (RTM_DELLINK over rtnetlink;
// no iproute2 needed). An interface that does not exist is not an error.
func deleteLink(name string) error {
	// sysfs, not net.InterfaceByName: "no such interface" is then ENOENT,
	// not an error to recognise by its text.
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "ifindex"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	index, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("devenv: ifindex of %s: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("devenv: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("devenv: netlink bind: %w", err)
	}

	// struct nlmsghdr (16 bytes) then struct ifinfomsg (16 bytes), host order.
	const seq = 1
	msg := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.RTM_DELLINK)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:], seq)
	msg[16] = unix.AF_UNSPEC
	ne.PutUint32(msg[20:], uint32(index))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("devenv: delete link %s: %w", name, err)
	}

	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("devenv: delete link %s: %w", name, err)
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(ne.Uint32(b[0:]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("devenv: delete link %s: bad netlink message", name)
			}
			typ, gotSeq := ne.Uint16(b[4:]), ne.Uint32(b[8:])
			if gotSeq == seq && typ == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4 {
				// struct nlmsgerr: a negative errno, 0 for the ack.
				if e := int32(ne.Uint32(b[unix.NLMSG_HDRLEN:])); e != 0 {
					errno := syscall.Errno(-e)
					if errno == unix.ENODEV {
						return nil // gone in the meantime
					}
					return fmt.Errorf("devenv: delete link %s: %w", name, errno)
				}
				return nil
			}
			b = b[(l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1):]
			if len(b) < unix.NLMSG_HDRLEN {
				break
			}
		}
	}
}

// linksWithPrefix lists the network interfaces whose name starts with
// prefix.
func linksWithPrefix(prefix string) ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	var out []string
	for _, ifi := range ifs {
		if strings.HasPrefix(ifi.Name, prefix) {
			out = append(out, ifi.Name)
		}
	}
	return out, nil
}
