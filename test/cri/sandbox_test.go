package cri

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
)

// shimOfPod returns the husk shim serving pod p.
func shimOfPod(t *testing.T, p *pod) Shim {
	t.Helper()
	shims, err := Shims(bench.Address())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shims {
		if s.ID == p.ID {
			return s
		}
	}
	t.Fatalf("no shim serves pod %s: %+v", p.ID, shims)
	return Shim{}
}

// memoryCgroupDir returns the directory of cgroup path in the memory
// hierarchy (v1) or the unified one.
func memoryCgroupDir(path string) string {
	if cgroups.Mode() == cgroups.Unified {
		return filepath.Join("/sys/fs/cgroup", path)
	}
	return filepath.Join("/sys/fs/cgroup/memory", path)
}

// TestPodCgroup: the pod's cgroup is sized from the CRI's sandbox
// annotations and, in sandbox_cgroup_only mode, the shim is accounted to it;
// removing the pod removes the shim's cgroup (checked by the pod's cleanup).
func TestPodCgroup(t *testing.T) {
	const limit = 256 << 20
	p := runPod(t, "husk", podOpts{resources: map[string]any{
		"memory_limit_in_bytes": limit, "cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512,
	}})
	p.start(t, "app", "sleep", "1000")

	dir := memoryCgroupDir(p.CgroupParent)
	file := "memory.limit_in_bytes"
	if cgroups.Mode() == cgroups.Unified {
		file = "memory.max"
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); got != limit {
		t.Fatalf("pod cgroup %s %s = %q, want %d", dir, file, b, limit)
	}

	s := shimOfPod(t, p)
	// The shim's main thread (what /proc/<pid> shows) stays in containerd's
	// mount namespace: parked in a container's, it made the pod cgroup's
	// release (which reads /proc/self/mountinfo) fail.
	if got, want := mountNS(t, s.Pid), mountNS(t, bench.Pid()); got != want {
		t.Errorf("shim %d's main thread is in mount namespace %s, containerd's is %s", s.Pid, got, want)
	}
	cg, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.Pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	want := p.CgroupParent + "/husk-shim"
	if !strings.Contains(string(cg), want+"\n") {
		t.Fatalf("shim %d is not in %s:\n%s", s.Pid, want, cg)
	}
	p.remove(t)
}

// TestPodShimKilled is R1 for a pod: SIGKILL the shim serving a pod with two
// running containers; containerd runs `containerd-shim-husk-v2 delete` for
// each, and once the pod is removed nothing is left: processes, mounts,
// cgroups (the shim's too), state, network (the pod's cleanup checks all).
func TestPodShimKilled(t *testing.T) {
	p := runPod(t, "husk", podOpts{})
	a := p.start(t, "a", "sleep", "1000")
	b := p.start(t, "b", "sh", "-c", "sleep 1000 & sleep 1000")
	s := shimOfPod(t, p)
	if err := syscall.Kill(s.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// containerd notices and marks the containers exited.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := crictl(t, "ps", "-a", "--pod", p.ID)
		if !strings.Contains(out, "Running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers still running after their shim was killed:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range []string{a, b} {
		if pid := containerPid(t, id); pid > 0 && syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d of container %.12s survived its shim", pid, id)
		}
	}
	p.remove(t)
	if ents, _ := os.ReadDir(filepath.Join(bench.Dir, "s")); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("shim sockets left in %s: %v", filepath.Join(bench.Dir, "s"), names)
	}
}

// containerPid is the pid crictl last reported for a container (0 if none).
func containerPid(t *testing.T, id string) int {
	out, _, err := bench.Crictl(testCtx(t), "inspect", "-o", "go-template", "--template", "{{.info.pid}}", id)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// mountNS names the mount namespace of process pid's main thread.
func mountNS(t *testing.T, pid int) string {
	t.Helper()
	l, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", "mnt"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}
