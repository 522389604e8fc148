package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// TestContainerdRestart is R2: tasks survive a containerd restart, and
// afterwards list, exec, kill and wait still work on them.
func TestContainerdRestart(t *testing.T) {
	needBench(t)
	keep, stop := name(t, "keep"), name(t, "stop")
	cleanupContainer(t, keep)
	s := startTask(t, stop, []string{"sh", "-c", "trap 'exit 9' TERM; echo ready; sleep 1000 & wait"})
	s.waitOutput(t, "ready")
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, keep, "sleep", "1000")
	before := shimPidOf(t, keep)

	if err := bench.Restart(testCtx(t)); err != nil {
		t.Fatalf("restarting containerd: %v", err)
	}

	if after := shimPidOf(t, keep); after != before || after == 0 {
		t.Fatalf("shim of %s changed across the restart: %d, then %d", keep, before, after)
	}
	out := ctr(t, "task", "ls")
	for _, id := range []string{keep, stop} {
		if !strings.Contains(lineOf(out, id), "RUNNING") {
			t.Fatalf("%s is not running after the restart:\n%s", id, out)
		}
	}
	if got := ctr(t, "task", "exec", "--exec-id", "after", keep, "echo", "still here"); got != "still here\n" {
		t.Fatalf("exec after restart = %q", got)
	}
	// A wait open across the restart ends with it (containerd's client
	// loses the stream); one opened afterwards must see the exit.
	_, ctx := newClient(t)
	exit, err := s.task.Wait(ctx)
	if err != nil {
		t.Fatalf("wait after restart: %v", err)
	}
	if err := s.task.Kill(ctx, syscall.SIGTERM); err != nil {
		t.Fatalf("kill after restart: %v", err)
	}
	select {
	case st := <-exit:
		if code, _, _ := st.Result(); code != 9 {
			t.Fatalf("exit status after restart = %d, want 9", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait across the restart never returned")
	}
	ctr(t, "task", "kill", "-s", "SIGKILL", keep)
	waitStopped(t, keep)
}
