//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
)

// sleeper starts a process that is not a VMM, for Cleanup to kill or
// spare.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestCleanupKillsTheRecordedProcess: the process whose pid and start
// time are recorded is killed and the backend's files removed; nothing
// else in the directory is touched.
func TestCleanupKillsTheRecordedProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := sleeper(t)
	if err := vmproc.Write(recordPath(dir), cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{vsockName, "other"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := New().Cleanup(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGKILL {
			t.Errorf("the recorded process ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the recorded process is still running")
	}
	if names := dirNames(t, dir); !equal(names, []string{"other"}) {
		t.Errorf("left in the dir: %v", names)
	}
}

// TestCleanupSparesAReusedPid: a process under the recorded pid with
// another start time is not the VMM's: it is not killed.
func TestCleanupSparesAReusedPid(t *testing.T) {
	dir := t.TempDir()
	cmd := sleeper(t)
	if err := vmproc.Write(recordPath(dir), cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	r, err := vmproc.Read(recordPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	r.StartTime--
	b := []byte(`{"pid":` + itoa(r.Pid) + `,"start_time":` + itoa(int(r.StartTime)) + `}`)
	if err := os.WriteFile(filepath.Join(dir, recordName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := New().Cleanup(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if _, running, ok := vmproc.StartTime(cmd.Process.Pid); !ok || !running {
		t.Error("Cleanup killed a process that only had the recorded pid")
	}
	if _, err := os.Stat(filepath.Join(dir, recordName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record is still there: %v", err)
	}
}

func TestCleanupNothingToDo(t *testing.T) {
	h := New()
	ctx := context.Background()
	if err := h.Cleanup(ctx, filepath.Join(t.TempDir(), "gone")); err != nil {
		t.Errorf("missing dir: %v", err)
	}
	if err := h.Cleanup(ctx, t.TempDir()); err != nil {
		t.Errorf("empty dir: %v", err)
	}
	for _, bad := range []string{`garbage`, `{"pid":1,"start_time":1}`, `{"pid":12,"start_time":1,"x":1}`, string(make([]byte, vmproc.MaxRecord+1))} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, recordName), []byte(bad), 0o600)
		if err := h.Cleanup(ctx, dir); err == nil {
			t.Errorf("record %.20q: no error", bad)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
