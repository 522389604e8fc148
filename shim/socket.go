package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

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

// maxListenAttempts bounds how often the start command retries binding a
// shim socket that another shim holds or held.
const maxListenAttempts = 4

// listen binds the socket at address for a new shim, or returns nil when a
// running shim serves it: for a shared shim (shared), one that reserved
// itself for container id. A shim on its way out is waited for; a socket
// nothing answers on is a dead shim's, and is replaced.
func listen(ctx context.Context, address, id string, shared bool) (*net.UnixListener, error) {
	for attempt := 1; ; attempt++ {
		l, err := shim.NewSocket(address)
		if err == nil {
			return l, nil
		}
		if !shim.SocketEaddrinuse(err) || attempt == maxListenAttempts {
			return nil, fmt.Errorf("creating shim socket: %w", err)
		}
		if !shared {
			if shim.CanConnect(address) {
				return nil, nil
			}
		} else {
			exiting, err := reserve(ctx, address, id)
			switch {
			case err == nil && exiting == 0:
				return nil, nil
			case err == nil:
				if err := waitExit(ctx, exiting); err != nil {
					return nil, err
				}
				continue // it removed its socket, or the next round finds it dead
			}
		}
		// Nothing answers: a dead shim's socket, or one an exiting shim has
		// just removed itself.
		if err := shim.RemoveSocket(address); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale shim socket: %w", err)
		}
	}
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
