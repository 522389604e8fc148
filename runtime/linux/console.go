package linux

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// consoleSocket is the socket pair over which libcontainer's init sends the
// master end of the pty it creates inside the container.
type consoleSocket struct {
	parent, child *os.File
}

func newConsoleSocket() (*consoleSocket, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket pair: %w", err)
	}
	return &consoleSocket{
		parent: os.NewFile(uintptr(fds[1]), "console-parent"),
		child:  os.NewFile(uintptr(fds[0]), "console-child"),
	}, nil
}

// receive reads the pty master sent by the container's init.
func (s *consoleSocket) receive() (*os.File, error) {
	s.child.Close() // the container has its copy
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(s.parent.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receiving pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receiving pty master: bad control message (%d): %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receiving pty master: want one fd, got %d: %v", len(fds), err)
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

func (s *consoleSocket) Close() {
	s.parent.Close()
	s.child.Close()
}

// resize sets the window size of a pty.
func resize(pty *os.File, width, height uint32) error {
	return unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)})
}
