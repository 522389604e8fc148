package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/pkg/shim"
	"golang.org/x/sys/unix"
)

// What the start command tells the shim it spawns, in its environment (the
// shim's command line is pkg/shim's).
const (
	// envFirst names the container the shim was started for: it holds a
	// reservation for it (group.go).
	envFirst = "HUSK_SHIM_FIRST"
	// envSocket is the shim's socket address, which it removes as it
	// exits if the socket is still its own. (pkg/shim would too, but it
	// finds the socket directory through the bundle's "s" link, relative
	// to the working directory the shim leaves; and for a group it names
	// the socket after the shim's -id, which a group's socket is not.)
	envSocket = "HUSK_SHIM_SOCKET"
)

// maxListenAttempts bounds how often the start command tries to bind a
// shim socket that another shim holds or held.
const maxListenAttempts = 4

// errLive: a shim answers on the socket.
var errLive = errors.New("a shim answers on the socket")

// listen binds the socket at address for a new shim, or returns nil when a
// running shim serves it: for a shared shim (shared), one that reserved
// itself for container id. A shim on its way out is waited for; a socket
// nothing answers on is a dead shim's, and is replaced.
func listen(ctx context.Context, address, id string, shared bool) (*net.UnixListener, error) {
	for attempt := 1; ; attempt++ {
		l, err := bindUnlessLive(address)
		switch {
		case err == nil:
			return l, nil
		case !errors.Is(err, errLive):
			return nil, err
		case !shared:
			return nil, nil
		}
		exiting, err := reserve(ctx, address, id)
		switch {
		case err == nil && exiting == 0:
			return nil, nil
		case err == nil:
			if err := waitExit(ctx, exiting); err != nil {
				return nil, err
			}
			// It removed its socket, or the next round finds it dead.
		case attempt == maxListenAttempts:
			return nil, fmt.Errorf("the shim at %s takes connections but does not answer: %w", socketPath(address), err)
		}
		if attempt == maxListenAttempts {
			return nil, fmt.Errorf("creating shim socket %s: still held after %d attempts", socketPath(address), attempt)
		}
	}
}

// bindUnlessLive binds the socket at address, replacing a dead shim's, or
// answers errLive when a shim (or a start command that has just bound it)
// takes connections there. Start commands of one group run at once: the
// check that nothing answers and the removal must be one step among them,
// or one removes the socket another has just bound in its place.
func bindUnlessLive(address string) (*net.UnixListener, error) {
	unlock, err := lockSockets(address)
	if err != nil {
		return nil, err
	}
	defer unlock()
	l, err := shim.NewSocket(address)
	if err == nil {
		return l, nil
	}
	if !shim.SocketEaddrinuse(err) {
		return nil, fmt.Errorf("creating shim socket: %w", err)
	}
	if !deadSocket(address) {
		return nil, errLive
	}
	if err := shim.RemoveSocket(address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale shim socket: %w", err)
	}
	if l, err = shim.NewSocket(address); err != nil {
		return nil, fmt.Errorf("creating shim socket: %w", err)
	}
	return l, nil
}

// removeIfDead removes the socket at address if nothing answers on it (a
// dead shim's), as one step among the start commands (bindUnlessLive).
func removeIfDead(address string) error {
	unlock, err := lockSockets(address)
	if err != nil {
		return err
	}
	defer unlock()
	if !deadSocket(address) {
		return nil
	}
	if err := shim.RemoveSocket(address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// lockSockets takes the lock over the sockets in address's directory: an
// flock of the directory itself, so that husk leaves no file of its own
// among containerd's sockets.
func lockSockets(address string) (unlock func(), err error) {
	dir := filepath.Dir(socketPath(address))
	// The first shim of a fresh containerd finds no socket directory yet:
	// make it as shim.NewSocket would (0700), before locking it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the shim socket directory: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the shim socket directory to lock it: %w", err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { _ = unix.Close(fd) }, nil
}

// deadCheckTimeout bounds deadSocket's connect: a live shim under load
// (a pod's containers starting fifty at once) can take a while to answer.
const deadCheckTimeout = 2 * time.Second

// deadSocket reports whether the socket at address is a dead shim's:
// connecting is refused (no process listens on it) or it is gone. A
// connect that times out is a live shim that is slow to answer, never a
// dead one: replacing it would start a second shim for its pod (a 100 ms
// check did, with fifty containers of one pod starting at once).
func deadSocket(address string) bool {
	conn, err := net.DialTimeout("unix", socketPath(address), deadCheckTimeout)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT)
}

// socketOwner is the pid that created the listening socket on fd (the
// start command that bound it): the kernel keeps it as the socket's peer
// credentials, which a client connecting to it reads too.
func socketOwner(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, err
	}
	return int(cred.Pid), nil
}

// removeOwnSocket removes the socket at address if it is still the one the
// shim listens on (created by owner): a group's next shim may have bound
// the path since, and a shim that still answers there is never replaced.
func removeOwnSocket(address string, owner int) error {
	conn, err := net.Dial("unix", socketPath(address))
	if err != nil {
		return nil // gone already, or nobody's
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return err
	}
	var peer int
	var perr error
	if err := raw.Control(func(fd uintptr) { peer, perr = socketOwner(int(fd)) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	if peer != owner {
		return nil
	}
	if err := os.Remove(socketPath(address)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// starter is what the start command told the shim it spawned.
type starter struct {
	first  string // the container it was started for
	socket string // the shim's socket address
	owner  int    // the pid that created the socket on fd 3
}

// fromStarter reads the start command's word from the environment (and
// drops it, so that no child inherits it) and the socket's owner from
// fd 3, before pkg/shim serves on it.
func fromStarter() starter {
	s := starter{first: os.Getenv(envFirst), socket: os.Getenv(envSocket)}
	_ = os.Unsetenv(envFirst)
	_ = os.Unsetenv(envSocket)
	if s.socket != "" {
		if pid, err := socketOwner(3); err == nil {
			s.owner = pid
		} else {
			s.socket = "" // cannot tell the socket is ours: leave it be
		}
	}
	return s
}
