package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// TestShimKilled: when a shim dies under a running container, containerd
// runs `containerd-shim-husk-v2 delete`, which must remove the container's
// processes, cgroups, state and rootfs mount; other containers go on.
func TestShimKilled(t *testing.T) {
	needBench(t)
	keep := name(t, "bystander")
	cleanupContainer(t, keep)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, keep, "sleep", "1000")
	id := name(t, "victim")
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, id, "sh", "-c", "sleep 1000 & sleep 1000")

	sockets := func() int {
		ents, _ := os.ReadDir(filepath.Join(bench.Dir, "s"))
		return len(ents)
	}
	before := sockets()
	shim := shimPidOf(t, id)
	if shim == 0 {
		t.Fatal("no shim process found for the victim")
	}
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// containerd notices the dead shim, runs delete, and marks the task
	// stopped; then the task and container can be removed.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, _ := bench.Ctr(testCtx(t), "task", "ls")
		if !strings.Contains(out, id) || strings.Contains(lineOf(out, id), "STOPPED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still listed as running after its shim died:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _, _ = bench.Ctr(testCtx(t), "task", "delete", id)
	ctr(t, "container", "delete", id)
	requireClean(t, id)
	if after := sockets(); after != before-1 {
		t.Errorf("shim sockets: %d before, %d after the dead shim was cleaned up (want one less)", before, after)
	}

	if out := ctr(t, "task", "exec", "--exec-id", "still", keep, "echo", "alive"); out != "alive\n" {
		t.Fatalf("bystander exec = %q", out)
	}
}

func lineOf(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}
