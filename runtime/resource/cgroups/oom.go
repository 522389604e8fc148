package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup1"
	"golang.org/x/sys/unix"
)

// OOMWatch reports the OOM kills in one cgroup. The kernel's notification
// (memory.oom_control's eventfd on v1, memory.events on v2) says when to
// look; the cgroup's oom_kill counter says whether a kill happened, so a
// kill is reported once however many ways it is heard of. Stop looks one
// last time: after the container's init is reaped, a kill the notification
// has not yet brought in is still reported, before C closes.
type OOMWatch struct {
	out     chan struct{}
	counter string // file holding the oom_kill counter; "" if unknown
	release func() // ends the kernel-side watch

	mu      sync.Mutex
	kills   uint64 // the counter when last read; guarded by mu
	stopped bool   // out is closed; guarded by mu
}

// WatchOOM starts reporting the cgroup's OOM kills on the watch's C.
func (c *Cgroup) WatchOOM() (*OOMWatch, error) {
	w := &OOMWatch{out: make(chan struct{}, 1), release: func() {}}
	if c.memDir != "" {
		w.counter = filepath.Join(c.memDir, "memory.events")
		if c.v2 == nil {
			w.counter = filepath.Join(c.memDir, "memory.oom_control")
		}
		if n, err := readOOMKills(w.counter); err == nil {
			w.kills = n // kills before the container was are not its own
		} else {
			w.counter = "" // a kernel without the counter (before 4.13)
		}
	}
	if c.v2 != nil {
		w.watchV2(c)
		return w, nil
	}
	if err := w.watchV1(c); err != nil {
		return nil, err
	}
	return w, nil
}

// C receives once for each OOM kill seen (one pending receive stands for
// any number of kills) and is closed by Stop. It is nil for a nil watch.
func (w *OOMWatch) C() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.out
}

// Stop reports a kill the counter shows and the watch has not reported yet,
// closes C and ends the watch. Call it once the container's init has been
// reaped. It may be called more than once, and on a nil watch.
func (w *OOMWatch) Stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.checkLocked()
	w.stopped = true
	close(w.out)
	w.mu.Unlock()
	w.release()
}

// heard handles a notification from the kernel. Without a counter to read,
// each notification is a kill.
func (w *OOMWatch) heard() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.counter == "" {
		w.notifyLocked()
		return
	}
	w.checkLocked()
}

// checkLocked reports a rise of the counter since it was last read.
// Preconditions: w.mu is held and w is not stopped.
func (w *OOMWatch) checkLocked() {
	if w.counter == "" {
		return
	}
	n, err := readOOMKills(w.counter)
	if err != nil || n <= w.kills {
		return
	}
	w.kills = n
	w.notifyLocked()
}

// notifyLocked makes C ready to receive, unless it already is.
// Preconditions: w.mu is held and w is not stopped.
func (w *OOMWatch) notifyLocked() {
	select {
	case w.out <- struct{}{}:
	default:
	}
}

// watchV1 waits on memory.oom_control's eventfd. The eventfd also fires when
// the cgroup is removed; that ends the watch.
func (w *OOMWatch) watchV1(c *Cgroup) error {
	fd, err := c.v1.OOMEventFD()
	if err != nil {
		return fmt.Errorf("registering OOM eventfd: %w", err)
	}
	if err := unix.SetNonblock(int(fd), true); err != nil {
		unix.Close(int(fd))
		return err
	}
	// A non-blocking fd in an os.File goes through the runtime poller, so
	// Close (release) interrupts a pending Read.
	f := os.NewFile(fd, "oom-eventfd")
	w.release = func() { f.Close() }
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			if c.v1.State() == cgroup1.Deleted {
				return
			}
			w.heard()
		}
	}()
	return nil
}

// watchV2 follows memory.events.
func (w *OOMWatch) watchV2(c *Cgroup) {
	events, errs := c.v2.EventChan()
	stop := make(chan struct{})
	w.release = func() { close(stop) }
	go func() {
		for {
			select {
			case <-events:
				w.heard()
			case _, ok := <-errs:
				if !ok {
					return
				}
			case <-stop:
				// Keep draining so the library's goroutine can finish
				// when the cgroup goes away.
				for {
					select {
					case <-events:
					case _, ok := <-errs:
						if !ok {
							return
						}
					}
				}
			}
		}
	}()
}

// readOOMKills reads the "oom_kill N" line of memory.oom_control (v1) or
// memory.events (v2).
func readOOMKills(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte{' '})
		if ok && string(k) == "oom_kill" {
			return strconv.ParseUint(string(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s has no oom_kill counter", file)
}
