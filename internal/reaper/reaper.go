// Package reaper reaps the orphans a shim inherits without taking the exit
// status of a child the shim waits for itself.
//
// The shim is a child subreaper (pkg/shim makes it one; libcontainer needs
// it, to wait for a container's init after the intermediate processes that
// created it exit). So when a process of a container that shares the host's
// PID namespace dies, its children reparent to the shim, and nobody waits
// for them: they stay zombies until the shim exits. A global wait4(-1) loop,
// pkg/shim's reaper, would instead race libcontainer and os/exec for the
// statuses of the shim's own children (which is why the shim turns it off).
//
// This reaper waits only for zombies nobody owns. Code that forks a child it
// will wait for itself brackets the fork: Spawn before it, the returned
// function with the child's pid once known (the reaper never scans while a
// spawn is in flight, so a child that dies at once cannot be taken between
// its fork and its owner's record of it), and Release once it has waited.
package reaper

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/logging"
)

// sweepEvery bounds how long an orphan can stay a zombie when its SIGCHLD
// came while a scan could not run (or named a pid about to be released).
const sweepEvery = 30 * time.Second

// Reaper reaps its process's unowned zombie children.
type Reaper struct {
	mu       sync.Mutex
	inflight int              // spawns between fork and ownership; guarded by mu
	owned    map[int]struct{} // children waited for by their creators; guarded by mu
	pending  bool             // a scan was skipped for a spawn in flight; guarded by mu
	reaped   int              // how many orphans were reaped; guarded by mu

	kick chan struct{}
	// children lists the process's children (a test may fake it).
	children func() ([]int, error)
}

// New returns a Reaper of the calling process's children.
func New() *Reaper {
	return &Reaper{
		owned:    make(map[int]struct{}),
		kick:     make(chan struct{}, 1),
		children: children,
	}
}

var std = New()

// Spawn, Release and Run use the process's Reaper.
func Spawn() (own func(pid int)) { return std.Spawn() }

// Release says the owner of pid has waited for it.
func Release(pid int) { std.Release(pid) }

// Run reaps the process's orphans until ctx ends.
func Run(ctx context.Context) { std.Run(ctx) }

// Spawn announces a fork whose child the caller waits for itself. The
// caller must call own exactly once: with the child's pid, or with 0 when
// the fork failed.
func (r *Reaper) Spawn() (own func(pid int)) {
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
	var once sync.Once
	return func(pid int) {
		once.Do(func() {
			r.mu.Lock()
			if pid > 0 {
				r.owned[pid] = struct{}{}
			}
			r.inflight--
			again := r.pending && r.inflight == 0
			r.mu.Unlock()
			if again {
				r.poke()
			}
		})
	}
}

// Release forgets pid, which its owner has waited for.
func (r *Reaper) Release(pid int) {
	r.mu.Lock()
	delete(r.owned, pid)
	r.mu.Unlock()
}

// Reaped returns how many orphans r has reaped.
func (r *Reaper) Reaped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

func (r *Reaper) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run scans on every SIGCHLD, and every sweepEvery, until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-r.kick:
		case <-tick.C:
		}
		if n, err := r.Scan(); err != nil {
			logging.L(ctx).Warn("reaping orphans", "error", err)
		} else if n > 0 {
			logging.L(ctx).Debug("reaped orphans", "count", n)
		}
	}
}

// Scan waits for every unowned zombie child and returns how many it reaped.
// With a spawn in flight it does nothing and scans again once the spawn is
// owned.
func (r *Reaper) Scan() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight > 0 {
		r.pending = true
		return 0, nil
	}
	r.pending = false
	pids, err := r.children()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pid := range pids {
		if _, ok := r.owned[pid]; ok || !zombie(pid) {
			continue
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil && !errors.Is(err, unix.ECHILD) {
			return n, err
		}
		if got == pid {
			n++
		}
	}
	r.reaped += n
	return n, nil
}

// children lists the calling process's children: each thread's, since a
// child belongs to the thread that forked it (and an orphan to the thread
// the kernel picked).
func children() ([]int, error) {
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited
			}
			return nil, err
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// zombie reports whether pid has exited and awaits its wait.
func zombie(pid int) bool {
	st, ok := state(pid)
	return ok && st == 'Z'
}

// Running reports whether process pid exists and has not exited (a zombie
// has).
func Running(pid int) bool {
	st, ok := state(pid)
	return ok && st != 'Z'
}

// state returns pid's state letter from /proc (false: no such process).
func state(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}
