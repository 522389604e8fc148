package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// TestOrphansAreReaped: in a container sharing the host PID namespace, a
// process whose parent exits reparents to the shim (a child subreaper);
// when it exits, the shim reaps it instead of keeping a zombie until it
// exits itself. The container's own processes keep their exit statuses.
func TestOrphansAreReaped(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	// The host's PID namespace, by the test's own process (pid 1 may be
	// out of reach in a sandboxed CI).
	hostPID := "pid:/proc/" + strconv.Itoa(os.Getpid()) + "/ns/pid"
	ctr(t, "run", "-d", "--with-ns", hostPID, "--runtime", husk, devenv.BusyboxRef, id, "sleep", "1000")
	shim := shimPidOf(t, id)
	if shim == 0 {
		t.Fatal("no shim serves the container")
	}
	// The exec's shell exits at once, leaving its sleep to the shim.
	out := ctr(t, "task", "exec", "--exec-id", "orphan", id, "sh", "-c", "sleep 0.5 & echo $!")
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("exec printed %q, not a pid", out)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d of the shim (pid %d) was not reaped: %s", pid, shim, stat)
		}
	}
	// Exit statuses still reach their owners.
	if _, _, err := bench.Ctr(testCtx(t), "task", "exec", "--exec-id", "status", id, "sh", "-c", "exit 5"); exitCode(err) != 5 {
		t.Errorf("exec exit status = %d (%v), want 5", exitCode(err), err)
	}
	ctr(t, "task", "kill", "-s", "SIGKILL", id)
}
