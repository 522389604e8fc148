package runner

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// terminating are the signals that end the runner with 128+n. As the
// container's PID 1 the runner gets no default action for any signal (the
// kernel drops signals PID 1 does not handle), so it must handle each one it
// means to die of. WASI preview 1 has no signals: nothing is forwarded to the
// module. SIGKILL and SIGSTOP need no handler; SIGPIPE keeps Go's behaviour
// (a write to a closed stdout ends the process).
var terminating = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGXCPU, unix.SIGXFSZ,
}

// handleSignals makes the terminating signals end the process with 128+n
// and, when the runner is its PID namespace's init, reaps the orphans that
// are reparented to it (processes execed into the container that leave
// children behind). The returned function stops both.
func handleSignals() (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, terminating...)
	if os.Getpid() == 1 {
		signal.Notify(ch, unix.SIGCHLD)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				n := s.(unix.Signal)
				if n == unix.SIGCHLD {
					reap()
					continue
				}
				os.Exit(128 + int(n))
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// reap collects every exited child without blocking. The runner starts no
// processes of its own, so every child is an orphan to reap.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
