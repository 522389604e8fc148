package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// processRecord names a VMM process so that a later shim can end it: its
// pid, and its start time (field 22 of /proc/<pid>/stat, in clock ticks
// since boot), which a process reusing the pid cannot have.
type processRecord struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// maxRecord bounds the record file Cleanup reads.
const maxRecord = 4 << 10

// startTime returns process pid's start time and whether it is still
// running (a zombie is not). ok is false if there is no such process.
func startTime(pid int) (start uint64, running, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false, false
	}
	f := strings.Fields(string(b[i+1:]))
	const state, starttime = 0, 19 // fields 3 and 22, counted after comm
	if len(f) <= starttime {
		return 0, false, false
	}
	start, err = strconv.ParseUint(f[starttime], 10, 64)
	if err != nil {
		return 0, false, false
	}
	return start, f[state] != "Z" && f[state] != "X", true
}

// writeProcessRecord records process pid in dir, atomically.
func writeProcessRecord(dir string, pid int) error {
	start, _, ok := startTime(pid)
	if !ok {
		return fmt.Errorf("VMM process %d is gone", pid)
	}
	b, err := json.Marshal(processRecord{Pid: pid, StartTime: start})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, recordName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, recordName))
}

func readProcessRecord(dir string) (*processRecord, error) {
	f, err := os.Open(filepath.Join(dir, recordName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, maxRecord+1)
	n, _ := f.Read(b)
	if n > maxRecord {
		return nil, fmt.Errorf("%s: over %d bytes", f.Name(), maxRecord)
	}
	var r processRecord
	if err := decodeStrict(b[:n], &r); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if r.Pid <= 1 {
		return nil, fmt.Errorf("%s: pid %d", f.Name(), r.Pid)
	}
	return &r, nil
}

// removeState removes what the backend put in dir.
func removeState(dir string) error {
	var errs []error
	for _, name := range []string{vsockName, recordName, recordName + ".tmp"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup kills the VMM process recorded in dir, if it is still the one
// recorded, waits until it has exited (bounded by ctx), and removes the
// backend's files.
func cleanup(ctx context.Context, dir string) error {
	r, err := readProcessRecord(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No process recorded: it never started, or Stop or a previous
		// Cleanup removed the record after it ended.
	case err != nil:
		return fmt.Errorf("builtin: cleanup: %w", err)
	default:
		if err := killRecorded(ctx, r); err != nil {
			return fmt.Errorf("builtin: cleanup: %w", err)
		}
	}
	if err := removeState(dir); err != nil {
		return fmt.Errorf("builtin: cleanup: %w", err)
	}
	return nil
}

// killRecorded SIGKILLs r's process if its start time still matches and
// waits until it has exited. It goes through a pidfd opened before the
// check: if the recorded process still holds the pid after the pidfd was
// opened, it held it when it was opened too, so the pidfd is that
// process's and the signal cannot reach one that reused the pid. A dead
// shim's VMM is not this process's child: whoever inherited it reaps it,
// so exited means the pidfd polls readable.
func killRecorded(ctx context.Context, r *processRecord) error {
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd of VMM process %d: %w", r.Pid, err)
	}
	defer unix.Close(fd)
	if start, _, ok := startTime(r.Pid); !ok || start != r.StartTime {
		return nil // gone, or the pid is another process's now
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing VMM process %d: %w", r.Pid, err)
	}
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 10)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for VMM process %d: %w", r.Pid, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("VMM process %d still running: %w", r.Pid, ctx.Err())
		}
	}
}
