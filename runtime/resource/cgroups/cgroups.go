// Package cgroups reads a container's cgroup the way containerd's runc shim
// does, through containerd/cgroups/v3: metrics for Stats and OOM-kill
// notifications, on cgroup v1 (and hybrid) and v2 hosts alike.
package cgroups

import (
	"errors"
	"fmt"
	"os"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Cgroup is one container's cgroup, on whichever hierarchy the host uses.
type Cgroup struct {
	v1 cgroup1.Cgroup
	v2 *cgroup2.Manager
}

// ForPid loads the cgroup that process pid is in.
func ForPid(pid int) (*Cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		path, err := cgroup2.PidGroupPath(pid)
		if err != nil {
			return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
		}
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("loading cgroup %s: %w", path, err)
		}
		return &Cgroup{v2: m}, nil
	}
	cg, err := cgroup1.Load(cgroup1.PidPath(pid))
	if err != nil {
		return nil, fmt.Errorf("loading cgroup of pid %d: %w", pid, err)
	}
	return &Cgroup{v1: cg}, nil
}

// Stats returns the cgroup's metrics: a *cgroup1/stats.Metrics or a
// *cgroup2/stats.Metrics, the messages ctr and the CRI decode.
func (c *Cgroup) Stats() (any, error) {
	if c.v2 != nil {
		return c.v2.Stat()
	}
	m, err := c.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil, fmt.Errorf("cgroup is gone: %w", errdefs.ErrNotFound)
		}
		return nil, err
	}
	return m, nil
}

// WatchOOM sends on the returned channel each time the kernel OOM-kills a
// process in the cgroup, until stop is closed or the cgroup is removed.
func (c *Cgroup) WatchOOM(stop <-chan struct{}) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	if c.v2 != nil {
		return out, c.watchV2(stop, out)
	}
	return out, c.watchV1(stop, out)
}

func notify(out chan<- struct{}) {
	select {
	case out <- struct{}{}:
	default: // one pending notification is as good as several
	}
}

// watchV1 waits on memory.oom_control's eventfd. The eventfd also fires when
// the cgroup is removed; that ends the watch.
func (c *Cgroup) watchV1(stop <-chan struct{}, out chan<- struct{}) error {
	fd, err := c.v1.OOMEventFD()
	if err != nil {
		return fmt.Errorf("registering OOM eventfd: %w", err)
	}
	if err := unix.SetNonblock(int(fd), true); err != nil {
		unix.Close(int(fd))
		return err
	}
	// A non-blocking fd in an os.File goes through the runtime poller, so
	// Close below interrupts a pending Read.
	f := os.NewFile(fd, "oom-eventfd")
	go func() {
		<-stop
		f.Close()
	}()
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			if c.v1.State() == cgroup1.Deleted {
				return
			}
			notify(out)
		}
	}()
	return nil
}

// watchV2 follows memory.events and reports increases of oom_kill.
func (c *Cgroup) watchV2(stop <-chan struct{}, out chan<- struct{}) error {
	events, errs := c.v2.EventChan()
	go func() {
		var kills uint64
		for {
			select {
			case e := <-events:
				if e.OOMKill > kills {
					kills = e.OOMKill
					notify(out)
				}
			case _, ok := <-errs:
				if !ok {
					return
				}
			case <-stop:
				// Keep draining so the library's goroutine can finish
				// when the cgroup goes away.
				go func() {
					for {
						select {
						case <-events:
						case _, ok := <-errs:
							if !ok {
								return
							}
						}
					}
				}()
				return
			}
		}
	}()
	return nil
}
