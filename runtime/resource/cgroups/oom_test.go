package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestOOMWatchReportsKillBeforeStop: a process OOM-killed in a cgroup is
// reported on C by the time Stop, called once it is reaped, closes C.
func TestOOMWatchReportsKillBeforeStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates a cgroup)")
	}
	tail, err := exec.LookPath("tail")
	if err != nil {
		t.Skip(err)
	}
	limit := int64(16 << 20)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	path := fmt.Sprintf("/husk-oomwatch-test-%d", os.Getpid())
	var add func(pid int) error
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager("/sys/fs/cgroup", path, cgroup2.ToResources(res))
		if err != nil {
			t.Skipf("cannot create a cgroup: %v", err)
		}
		t.Cleanup(func() { _ = m.Delete() })
		add = func(pid int) error { return m.AddProc(uint64(pid)) }
	} else {
		cg, err := cgroup1.New(cgroup1.StaticPath(path), res)
		if err != nil {
			t.Skipf("cannot create a cgroup: %v", err)
		}
		t.Cleanup(func() { _ = cg.Delete() })
		add = func(pid int) error { return cg.AddProc(uint64(pid)) }
	}

	// sh waits for a line on stdin, so it allocates only once in the cgroup;
	// tail keeps an endless line in memory.
	cmd := exec.Command("/bin/sh", "-c", "read x; exec "+tail+" /dev/zero")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	cg, err := ForPid(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if cg.memDir == "" || filepath.Base(cg.memDir) != filepath.Base(path) {
		t.Fatalf("memory directory %q is not the cgroup %s", cg.memDir, path)
	}
	w, err := cg.WatchOOM()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("memory hog ended with %v, want SIGKILL", err)
	}
	w.Stop()
	if _, ok := <-w.C(); !ok {
		t.Fatal("C closed without reporting the OOM kill")
	}
	if _, ok := <-w.C(); ok {
		t.Fatal("C reported a second kill")
	}
	w.Stop() // again: a no-op
}
