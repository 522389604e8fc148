package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// TestSlowExecHookLeavesTaskAnswering: while a process.exec module takes
// its whole deadline, ctr still lists the task, kills it and sees it
// stopped at once; the exec, admitted only after the container stopped,
// fails and starts nothing.
func TestSlowExecHookLeavesTaskAnswering(t *testing.T) {
	needBench(t)
	const deadline = 5 * time.Second // the hook's; prompt is far below it
	const prompt = 2 * time.Second   // ctr itself costs tens of milliseconds
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(t.TempDir(), "slow.wasm")
	if err := os.WriteFile(module, wasmtest.WAT(t, filepath.Join(root, "runtime", "testdata", "slow.wat")), 0o644); err != nil {
		t.Fatal(err)
	}
	id := name(t, "")
	hook := "slow-" + id
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = %q
module = %q
points = ["process.exec"]
on_error = "allow"
timeout = %q
`, hook, module, deadline.String()))
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "sleep", "1000")

	type result struct {
		out, stderr string
		err         error
	}
	from := logSize(t)
	execDone := make(chan result, 1)
	go func() {
		out, stderr, err := bench.Ctr(testCtx(t), "task", "exec", "--exec-id", "late", id, "sh", "-c", "echo ran")
		execDone <- result{out, stderr, err}
	}()
	// The module logs the point as its call begins (item 3 put that line
	// in the shim's log).
	began := time.Now().Add(30 * time.Second)
	for {
		if anyLineHasAll(logLinesSince(t, from), []string{"msg=process.exec", "hook=" + hook, "from=module"}) {
			break
		}
		if time.Now().After(began) {
			t.Fatal("the exec's hook never began")
		}
		time.Sleep(20 * time.Millisecond)
	}

	timed := func(what string, args ...string) string {
		t.Helper()
		start := time.Now()
		out := ctr(t, args...)
		if took := time.Since(start); took > prompt {
			t.Errorf("%s took %v while the exec's hook was deciding", what, took.Round(time.Millisecond))
		}
		return out
	}
	if out := timed("ctr task ls", "task", "ls"); !taskStatusIs(out, id, "RUNNING") {
		t.Errorf("task ls during the exec's admission:\n%s", out)
	}
	timed("ctr task kill", "task", "kill", "-s", "SIGKILL", id)
	stopped := time.Now().Add(prompt)
	for out := ""; !taskStatusIs(out, id, "STOPPED"); out = ctr(t, "task", "ls") {
		if time.Now().After(stopped) {
			t.Fatalf("the killed task was not recorded as stopped within %v while the exec's hook was deciding:\n%s", prompt, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case r := <-execDone:
		t.Fatalf("the exec ended before the checks did (%v): they prove nothing", r.err)
	default:
	}

	r := <-execDone
	if r.err == nil || strings.Contains(r.out, "ran") {
		t.Fatalf("exec into a container that stopped during its admission: %v, output %q", r.err, r.out)
	}
	if !strings.Contains(r.stderr, "stopped") {
		t.Errorf("the exec's error does not say the container stopped: %s", r.stderr)
	}
	if out := ctr(t, "task", "ps", id); strings.Contains(out, "late") {
		t.Errorf("the refused exec left a process:\n%s", out)
	}
}

// taskStatusIs reports whether `ctr task ls` output lists task id with
// the given status.
func taskStatusIs(ls, id, status string) bool {
	for _, l := range strings.Split(ls, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == id && f[2] == status {
			return true
		}
	}
	return false
}
