package virt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/handler"
	rcgroups "github.com/huskrt/husk/runtime/resource/cgroups"
)

func TestVMCgroupIsTheSandboxContainers(t *testing.T) {
	for _, tt := range []struct {
		name, cgroupsPath, want string
	}{
		{"ctr", "/default/web", "/default/web"},
		{"cri", "/kubepods/burstable/pod1234/abcd", "/kubepods/burstable/pod1234/abcd"},
		{"unclean", "/kubepods//pod1/../pod2/x/", "/kubepods/pod2/x"},
		{"systemd", "system.slice:cri-containerd:abcd", ""},
		{"root", "/", ""},
		{"none", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &handler.SandboxRequest{Spec: &specs.Spec{Linux: &specs.Linux{CgroupsPath: tt.cgroupsPath}}}
			if got := vmCgroup(req); got != tt.want {
				t.Errorf("vmCgroup(%q) = %q, want %q", tt.cgroupsPath, got, tt.want)
			}
		})
	}
	if got := vmCgroup(&handler.SandboxRequest{Spec: &specs.Spec{}}); got != "" {
		t.Errorf("no Linux section: %q", got)
	}
}

// TestVMCgroupBesideOtherContainers is the case ctr met in the nested
// harness: the VM's process was put in the sandbox container's parent
// (for ctr, the namespace's cgroup), where other containers' cgroups with
// controllers delegated make cgroup v2 refuse any process (EBUSY). It now
// gets the sandbox container's own cgroup, made for it and removed with
// the VM, by Close and by a later shim's CleanupSandbox.
func TestVMCgroupBesideOtherContainers(t *testing.T) {
	e := newEnv(t)
	parent := fmt.Sprintf("/husk-virt-test-%d", os.Getpid())
	other := parent + "/other-container"
	if err := rcgroups.Create(other); err != nil {
		t.Skipf("cannot create cgroups here: %v", err)
	}
	t.Cleanup(func() {
		_ = rcgroups.Remove(other)
		_ = rcgroups.Remove(parent)
	})
	dirOf := func(cg string) string {
		if cgroups.Mode() == cgroups.Unified {
			return filepath.Join("/sys/fs/cgroup", cg)
		}
		return filepath.Join("/sys/fs/cgroup/memory", cg)
	}
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	if cgroups.Mode() == cgroups.Unified {
		if err := rcgroups.AddProc(parent, sleeper.Process.Pid); err == nil {
			t.Fatalf("cgroup v2 let a process into %s beside a child cgroup: the test does not reproduce the case", parent)
		}
	}

	newSandbox := func(id string) (handler.Sandbox, string, string) {
		t.Helper()
		cg := parent + "/" + id
		state := filepath.Join(e.state, id)
		sb, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: id, Namespace: "ns", StateDir: state,
			Spec: &specs.Spec{Linux: &specs.Linux{CgroupsPath: cg}}, Config: &e.cfg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sb.Close(context.Background()) })
		e.hv.mu.Lock()
		got := e.hv.started[len(e.hv.started)-1].cfg.Cgroup
		e.hv.mu.Unlock()
		if got != cg {
			t.Fatalf("the VM's cgroup is %q, want the sandbox container's %q", got, cg)
		}
		if _, err := os.Stat(dirOf(cg)); err != nil {
			t.Fatalf("the VM's cgroup was not made: %v", err)
		}
		return sb, cg, state
	}

	sb, cg, _ := newSandbox("pod-a")
	if err := rcgroups.AddProc(cg, sleeper.Process.Pid); err != nil {
		t.Fatalf("a process cannot join the VM's cgroup: %v", err)
	}
	if err := rcgroups.AddProc("/", sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(cg)); !os.IsNotExist(err) {
		t.Errorf("the VM's cgroup %s is left after Close (%v)", cg, err)
	}

	_, cg, state := newSandbox("pod-b")
	if err := e.h.CleanupSandbox(e.ctx, state); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(cg)); !os.IsNotExist(err) {
		t.Errorf("the VM's cgroup %s is left after CleanupSandbox (%v)", cg, err)
	}
}
