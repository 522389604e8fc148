package wasm

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	runtimewasm "github.com/huskrt/husk/runtime/wasm"
)

// TestShimKilled is R1 for a Wasm container: SIGKILL the shim under a
// running module; containerd runs `containerd-shim-husk-v2 delete`, which
// must leave no runner process, cgroup, husk state or cache view behind.
func TestShimKilled(t *testing.T) {
	id := name(t, "")
	s := startWasm(t, id, []string{"/bin/spin.wasm", "loop"})
	time.Sleep(200 * time.Millisecond)
	_, ctx := newClient(t)
	runner := int(s.task.Pid())
	shim := shimPid(t, id)
	if shim == 0 || runner == 0 {
		t.Fatalf("shim pid %d, runner pid %d", shim, runner)
	}
	cfg, err := config.Load(config.Path(""))
	if err != nil {
		t.Fatal(err)
	}
	ns := bench.Namespace
	left := func() []string {
		var found []string
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(runner))); err == nil {
			if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(runner), "stat")); !bytes.Contains(b, []byte(") Z ")) {
				found = append(found, "runner process "+strconv.Itoa(runner))
			}
		}
		dirs := []string{
			persist.Dir(cfg.Runtime.StateDir, ns, id),
			filepath.Join(runtimewasm.DefaultCacheDir, "containers", ns, id),
		}
		if cgroups.Mode() == cgroups.Unified {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ns, id))
		} else {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup/memory", ns, id), filepath.Join("/sys/fs/cgroup/pids", ns, id))
		}
		for _, d := range dirs {
			if _, err := os.Stat(d); err == nil {
				found = append(found, d)
			}
		}
		return found
	}
	// Everything checked for afterwards exists now, so the check can fail.
	if l := left(); len(l) < 4 {
		t.Fatalf("before the kill, expected the runner, state, cache view and cgroups; found only %v", l)
	}
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A wait open on the dead shim ends with an unknown status (as with
	// runc); containerd then runs delete and marks the task stopped.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := s.task.Status(ctx)
		if err != nil || st.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still %s 30 s after its shim died", st.Status)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for l := left(); len(l) > 0; l = left() {
		if time.Now().After(deadline) {
			t.Fatalf("left behind after the shim died: %v", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shimPid returns the pid of the husk shim serving container id, or 0.
func shimPid(t *testing.T, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id && strings.Contains(args[0], "husk") {
				pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
				return pid
			}
		}
	}
	return 0
}
