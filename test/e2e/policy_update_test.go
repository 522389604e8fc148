package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// Hooks at container.update, end to end: the container is started with
// ctr and a husk config naming the hook; the update comes through
// containerd's Go client (ctr has no update command; nerdctl update and
// the CRI's UpdateContainerResources send the same request).

// decisionModule returns the path of wasmhost/testdata/decision.wat
// compiled: a hook module whose decision is its [hook.config] table.
func decisionModule(t *testing.T) string {
	t.Helper()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "decision.wasm")
	if err := os.WriteFile(path, wasmtest.WAT(t, filepath.Join(root, "wasmhost", "testdata", "decision.wat")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// updateMemory asks containerd to set the memory limit of task id.
func updateMemory(t *testing.T, id string, limit int64) error {
	t.Helper()
	cl, ctx := newClient(t)
	c, err := cl.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}))
}

// limitOf reads the memory limit of task id from its metrics.
func limitOf(t *testing.T, id string) uint64 {
	t.Helper()
	cl, ctx := newClient(t)
	c, err := cl.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return memoryLimit(t, task)
}

// TestPolicyDeniesUpdate: an enforcing hook at container.update that
// denies refuses the update with the hook's reason, as a permission
// error, and the container keeps the limit it was admitted with.
func TestPolicyDeniesUpdate(t *testing.T) {
	needBench(t)
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "fixed-limits"
module = %q
points = ["container.update"]

[hook.config]
allow = false
reason = "limits are fixed once a container is admitted"
`, decisionModule(t)))
	id := name(t, "")
	cleanupContainer(t, id)
	const admitted = 64 << 20
	ctr(t, "run", "-d", "--memory-limit", fmt.Sprint(admitted), "--runtime", husk, "--runtime-config-path", cfg,
		devenv.BusyboxRef, id, "sleep", "1000")
	err := updateMemory(t, id, 256<<20)
	if err == nil {
		t.Fatal("update succeeded against a hook that denies it")
	}
	if !errdefs.IsPermissionDenied(err) {
		t.Errorf("update error %v is not a permission error", err)
	}
	for _, want := range []string{`hook "fixed-limits" denied container.update`, "limits are fixed once a container is admitted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("update error lacks %q: %v", want, err)
		}
	}
	if got := limitOf(t, id); got != admitted {
		t.Fatalf("memory limit after a denied update = %d, want %d (the admitted one)", got, admitted)
	}
	// The container is unharmed.
	if out := ctr(t, "task", "exec", "--exec-id", "after", id, "echo", "alive"); out != "alive\n" {
		t.Fatalf("exec after a denied update = %q", out)
	}
}
