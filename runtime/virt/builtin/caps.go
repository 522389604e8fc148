package builtin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Why a signal per thread: capabilities belong to each thread, not to the
// process, and capset(2) changes only the caller's. A Go program has
// threads it does not control (sysmon, idle Ms, the template thread) and
// with cgo the Go runtime refuses syscall.AllThreadsSyscall; a thread left
// with its capabilities would be one a guest that broke out could borrow
// (every thread shares the memory it could write). So each thread is sent
// capSignal, whose handler drops its own, and the threads are checked in
// /proc until none holds any. A thread created meanwhile inherits its
// creator's sets, so once no thread holds any, none can again.

// capDropTimeout bounds waiting for every thread to drop its
// capabilities.
const capDropTimeout = 5 * time.Second

// dropCapabilities empties every capability set (bounding and ambient
// included) of every thread of the process. tasks is the process's
// /proc/<pid>/task directory, in a procfs of its own PID namespace (tids
// are signalled by their numbers there).
func dropCapabilities(tasks *os.File) error {
	restore, err := installCapDrop()
	if err != nil {
		return err
	}
	defer restore()
	pid := unix.Getpid()
	deadline := time.Now().Add(capDropTimeout)
	// Each thread is signalled once: it drops its sets in its handler,
	// whose last system call is capset. A second signal could still be
	// running its handler (prctl, capset) after the seccomp filter is in
	// place, which would kill the process. (A tid is not reused within
	// this loop: tids are allocated in increasing order and the
	// namespace's count starts at 1.)
	signalled := make(map[int]bool)
	// Two clean rounds in a row: a thread signalled in one round may
	// create a thread (which inherits its capabilities) and then drop its
	// own after the next round listed the threads but before it read that
	// thread's status; the round after lists the new one.
	clean := 0
	for clean < 2 {
		tids, err := threads(tasks)
		if err != nil {
			return err
		}
		var holding []int
		for _, tid := range tids {
			held, err := threadHoldsCaps(tasks, tid)
			if err != nil {
				return err
			}
			if !held {
				continue
			}
			holding = append(holding, tid)
			if signalled[tid] {
				continue
			}
			signalled[tid] = true
			if err := unix.Tgkill(pid, tid, capSignal); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("signalling thread %d: %w", tid, err)
			}
		}
		if len(holding) == 0 {
			clean++
			continue
		}
		clean = 0
		if time.Now().After(deadline) {
			return fmt.Errorf("threads %v still hold capabilities after %v", holding, capDropTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// threads lists the tids in tasks.
func threads(tasks *os.File) ([]int, error) {
	if _, err := tasks.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("listing threads: %w", err)
	}
	names, err := tasks.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("listing threads: %w", err)
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// threadHoldsCaps reports whether thread tid has any capability in any
// set; a thread that has exited holds none.
func threadHoldsCaps(tasks *os.File, tid int) (bool, error) {
	fd, err := unix.Openat(int(tasks.Fd()), strconv.Itoa(tid)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("thread %d: %w", tid, err)
	}
	f := os.NewFile(uintptr(fd), "status")
	defer f.Close()
	caps, err := parseCaps(f)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("thread %d: %w", tid, err)
	}
	for _, v := range caps {
		if v != 0 {
			return true, nil
		}
	}
	return false, nil
}

// capFields are the capability sets in /proc/<pid>/status.
var capFields = []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}

// parseCaps returns the capability sets of a /proc status file, by name.
func parseCaps(r io.Reader) (map[string]uint64, error) {
	caps := make(map[string]uint64, len(capFields))
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(name, "Cap") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		caps[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range capFields {
		if _, ok := caps[n]; !ok {
			return nil, fmt.Errorf("no %s in status", n)
		}
	}
	return caps, nil
}
