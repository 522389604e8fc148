// Package vmproc records a VM's host process in the VM's directory so that
// a later shim can end it, and reads what the kernel says of it. The
// hypervisor backends (runtime/virt/builtin, runtime/virt/qemu) share it.
package vmproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Record names a VM's process: its pid, and its start time (field 22 of
// /proc/<pid>/stat, in clock ticks since boot), which a process reusing
// the pid cannot have.
type Record struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// MaxRecord bounds the record file Read reads.
const MaxRecord = 4 << 10

// StartTime returns process pid's start time and whether it is still
// running (a zombie is not). ok is false if there is no such process.
func StartTime(pid int) (start uint64, running, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
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

// Write records process pid at path, atomically (through path.tmp).
func Write(path string, pid int) error {
	start, _, ok := StartTime(pid)
	if !ok {
		return fmt.Errorf("VM process %d is gone", pid)
	}
	b, err := json.Marshal(Record{Pid: pid, StartTime: start})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Read reads the record at path: at most 4 KiB of one JSON object with
// exactly Record's fields and a plausible pid.
func Read(path string) (*Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxRecord+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecord {
		return nil, fmt.Errorf("%s: over %d bytes", path, MaxRecord)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the record", path)
	}
	if r.Pid <= 1 {
		return nil, fmt.Errorf("%s: pid %d", path, r.Pid)
	}
	return &r, nil
}

// Running says whether r's process still runs (and is r's, not one that
// reused its pid).
func (r *Record) Running() bool {
	start, running, ok := StartTime(r.Pid)
	return ok && running && start == r.StartTime
}

// Remove removes the record at path and its temporary file, if there.
func Remove(path string) error {
	var errs []error
	for _, p := range []string{path, path + ".tmp"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Kill SIGKILLs r's process if its start time still matches and waits
// until it has exited, bounded by ctx. It goes through a pidfd opened
// before the check: if the recorded process still holds the pid after
// the pidfd was opened, it held it when it was opened too, so the pidfd
// is that process's and the signal cannot reach one that reused the pid.
// A dead shim's VM process is not this process's child: whoever inherited
// it reaps it, so exited means the pidfd polls readable.
func Kill(ctx context.Context, r *Record) error {
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd of VM process %d: %w", r.Pid, err)
	}
	defer unix.Close(fd)
	if start, _, ok := StartTime(r.Pid); !ok || start != r.StartTime {
		return nil // gone, or the pid is another process's now
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing VM process %d: %w", r.Pid, err)
	}
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 10)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for VM process %d: %w", r.Pid, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("VM process %d still running: %w", r.Pid, ctx.Err())
		}
	}
}

// RSS is process pid's resident set in bytes (0 if unknown), from
// /proc/<pid>/statm: the kernel's count, not the process's own.
func RSS(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// Cleanup ends the VM process a dead shim left behind, as recorded at
// path: it kills it if it is still the recorded one (Kill), then removes
// the record. No record is not an error (the VM never started, or it was
// stopped or cleaned up already); a record that cannot be read is.
func Cleanup(ctx context.Context, path string) error {
	r, err := Read(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := Kill(ctx, r); err != nil {
			return err
		}
	}
	return Remove(path)
}
