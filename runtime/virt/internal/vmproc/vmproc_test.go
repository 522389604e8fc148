package vmproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRecordRoundTripAndStrictRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vm.pid")
	if err := Write(path, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	r, err := Read(path)
	if err != nil || r.Pid != os.Getpid() || !r.Running() {
		t.Fatalf("Read = %+v, %v; want this process, running", r, err)
	}
	for _, bad := range []string{`garbage`, `{"pid":1,"start_time":1}`, `{"pid":12,"start_time":1,"x":1}`,
		`{"pid":12,"start_time":1}{}`, string(make([]byte, MaxRecord+1))} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := Read(path); err == nil {
			t.Errorf("record %.30q: no error", bad)
		}
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
	if err := Remove(path); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}

// TestKillOnlyTheRecordedProcess: Kill ends the recorded process and
// spares one whose start time differs (a reused pid).
func TestKillOnlyTheRecordedProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep(1) to kill: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	start, running, ok := StartTime(cmd.Process.Pid)
	if !ok || !running {
		t.Fatalf("StartTime of a running process: %d, %v, %v", start, running, ok)
	}
	if err := Kill(context.Background(), &Record{Pid: cmd.Process.Pid, StartTime: start + 1}); err != nil {
		t.Fatal(err)
	}
	if _, running, _ := StartTime(cmd.Process.Pid); !running {
		t.Fatal("a process with another start time was killed")
	}
	if err := Kill(context.Background(), &Record{Pid: cmd.Process.Pid, StartTime: start}); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := <-exited; !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the recorded process ended with %v, want SIGKILL", err)
	}
}

func TestRSS(t *testing.T) {
	if RSS(os.Getpid()) == 0 {
		t.Error("this process has no RSS")
	}
	if RSS(1<<30) != 0 {
		t.Error("a pid that cannot exist has an RSS")
	}
}

func TestTailKeepsTheLastLinesBounded(t *testing.T) {
	var tl Tail
	for i := range 100 {
		fmt.Fprintf(&tl, "line %d\n", i)
	}
	tl.Write([]byte(strings.Repeat("y", 10000) + "\npartial \x1b[2J"))
	lines := strings.Split(tl.String(), "\n")
	if len(lines) != TailLines+1 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[0] != "line 81" || lines[TailLines-1] != strings.Repeat("y", TailLineLen)+"…" || lines[TailLines] != "partial ?[2J" {
		t.Errorf("tail:\n%s", tl.String())
	}
}
