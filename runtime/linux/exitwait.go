package linux

import (
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit returns once the child pid has exited (it is then a zombie,
// left for its owner's wait), or at once if that cannot be watched. The
// wait that reaps it then does not block: os.Process.Wait is a blocking
// waitid(2), and a goroutine in a system call holds an OS thread, so each
// running container kept a thread (its signal stack, its pthread stack)
// for its whole life. A pidfd is the netpoller's instead: it becomes
// readable when the process exits. pid must be a child not yet reaped, so
// that it names no other process.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return // the caller's wait blocks instead
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err != nil || n > 0 // exited (or unwatchable: wait)
	})
}
