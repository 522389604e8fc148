package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/huskrt/husk/test/devenv"
)

// These tests drive husk the way a person does: through ctr.

func TestRunPrintsOutput(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	out := ctr(t, "run", "--rm", "--runtime", husk, devenv.BusyboxRef, id, "sh", "-c", "echo hello from husk; echo to-stderr >&2")
	if out != "hello from husk\n" {
		t.Fatalf("stdout = %q, want %q", out, "hello from husk\n")
	}
}

func TestRunRootfs(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	out := ctr(t, "run", "--rm", "--runtime", husk, "--rootfs", rootfsDir, id, "/bin/sh", "-c", "echo rootfs-ok; cat /etc/passwd | head -1")
	if !strings.HasPrefix(out, "rootfs-ok\nroot:") {
		t.Fatalf("stdout = %q", out)
	}
}

func TestExitCodes(t *testing.T) {
	b := needBench(t)
	tests := []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"exit 255", 255},
		// The init is PID 1 of its namespace and immune to its own
		// signals; death by signal is covered through exec and kill.
		{"sleep 100 & kill -KILL $!; wait $!", 128 + int(syscall.SIGKILL)},
	}
	for i, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			id := name(t, string(rune('a'+i)))
			cleanupContainer(t, id)
			_, _, err := b.Ctr(testCtx(t), "run", "--rm", "--runtime", husk, devenv.BusyboxRef, id, "sh", "-c", tt.script)
			if got := exitCode(err); got != tt.want {
				t.Fatalf("exit status = %d (%v), want %d", got, err, tt.want)
			}
		})
	}
}

func TestDetachedRunAndExec(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, id, "sleep", "1000")

	if out := ctr(t, "task", "ls"); !strings.Contains(out, id) || !strings.Contains(out, "RUNNING") {
		t.Fatalf("task ls = %q, want %s RUNNING", out, id)
	}
	out := ctr(t, "task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '")
	if out != "exec-ok\nsleep 1000 " {
		t.Fatalf("exec stdout = %q", out)
	}
	_, _, err := bench.Ctr(testCtx(t), "task", "exec", "--exec-id", "e2", id, "sh", "-c", "exit 7")
	if got := exitCode(err); got != 7 {
		t.Fatalf("exec exit status = %d (%v), want 7", got, err)
	}
	// An exec process is not PID 1: death by signal n is status 128+n.
	for sig, want := range map[string]int{"SEGV": 139, "KILL": 137, "TERM": 143} {
		_, _, err := bench.Ctr(testCtx(t), "task", "exec", "--exec-id", "sig-"+strings.ToLower(sig), id, "sh", "-c", "kill -"+sig+" $$")
		if got := exitCode(err); got != want {
			t.Errorf("exec killed by SIG%s: exit status = %d (%v), want %d", sig, got, err, want)
		}
	}
	// The exec shows up in ps while it runs.
	go func() { _, _, _ = bench.Ctr(testCtx(t), "task", "exec", "--exec-id", "e3", id, "sleep", "2") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps := ctr(t, "task", "ps", id)
		if strings.Contains(ps, "e3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec e3 never listed by task ps:\n%s", ps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctr(t, "task", "kill", "-s", "SIGKILL", id)
}

func TestStdin(t *testing.T) {
	b := needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	cmd := b.CtrCmd(testCtx(t), "run", "--rm", "--runtime", husk, devenv.BusyboxRef, id, "sh", "-c", "cat; echo done")
	cmd.Stdin = strings.NewReader("line one\nline two\n")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("ctr run -i: %v", err)
	}
	if want := "line one\nline two\ndone\n"; out.String() != want {
		t.Fatalf("stdout = %q, want %q (stdin must reach the process and then close)", out.String(), want)
	}
}

func TestTTY(t *testing.T) {
	b := needBench(t)
	// Under heavy load, ctr -t sometimes ends with only the first line of
	// output on its terminal — with runc as with husk (seen with the same
	// test on io.containerd.runc.v2) — so a run missing lines is retried,
	// twice at most, and reported.
	var out string
	for attempt := 1; attempt <= 3; attempt++ {
		id := name(t, fmt.Sprint(attempt))
		cleanupContainer(t, id)
		cmd := b.CtrCmd(testCtx(t), "run", "-t", "--rm", "--runtime", husk, devenv.BusyboxRef, id, "sh", "-c",
			// ctr sets the size right after start: wait for it (runc alike).
			`tty; for i in $(seq 50); do s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] && break; sleep 0.1; done; echo "size $s"; [ -t 0 ] && echo stdin-is-tty`)
		master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 41, Cols: 113})
		if err != nil {
			t.Fatalf("starting ctr on a pty: %v", err)
		}
		out = readUntilEOF(master)
		master.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("ctr run -t: %v\n%s", err, out)
		}
		if strings.Contains(out, "stdin-is-tty") {
			break
		}
		t.Logf("attempt %d: terminal output cut short: %q", attempt, out)
	}
	for _, want := range []string{"/dev/pts/0", "size 41 113", "stdin-is-tty"} {
		if !strings.Contains(out, want) {
			t.Errorf("tty output %q lacks %q", out, want)
		}
	}
}

// readUntilEOF reads a pty master until the other side is gone (EIO).
func readUntilEOF(f *os.File) string {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, f)
	if err != nil && !errors.Is(err, syscall.EIO) {
		buf.WriteString("\n[read error: " + err.Error() + "]")
	}
	return buf.String()
}

func TestCheckpointNotImplemented(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, id, "sleep", "1000")
	msg := ctrErr(t, "task", "checkpoint", id)
	if !strings.Contains(msg, "husk does not support checkpoint/restore yet") {
		t.Fatalf("checkpoint error = %q, want a not-implemented message", msg)
	}
}
