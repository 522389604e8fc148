package stdio

import (
	"io"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// drainGrace bounds how long a copier, done copying, waits for the client
// to read what it wrote to a FIFO.
const drainGrace = time.Second

// awaitRead waits, up to grace, until nothing written to dst is left unread
// in it. dst is containerd's FIFO: once the client hears of the exit it may
// close its end (ctr's Delete does, pkg/cio's Cancel), and what it had not
// read yet is lost. Other destinations (files) return at once.
func awaitRead(dst io.Writer, grace time.Duration) {
	sc, ok := dst.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(grace)
	for {
		unread := 0
		if cerr := rc.Control(func(fd uintptr) {
			var st unix.Stat_t
			if unix.Fstat(int(fd), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				return
			}
			// A FIFO without readers (POLLERR) will not be read.
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, perr := unix.Poll(pfd, 0); perr != nil || pfd[0].Revents&unix.POLLERR != 0 {
				return
			}
			unread, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD
		}); cerr != nil || err != nil || unread == 0 || time.Now().After(deadline) {
			return
		}
		// No event says that a reader has emptied a pipe: look again soon.
		time.Sleep(time.Millisecond)
	}
}
