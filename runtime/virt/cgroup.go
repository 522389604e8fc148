package virt

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/resource/cgroups"
)

// The VM's process is charged to the pod through a cgroup of its own: the
// cgroup containerd (or the kubelet, through the CRI) named for the
// sandbox container, under the pod's cgroup, which on the host holds no
// other process (the containers' cgroups are in the guest). It cannot be
// the pod's cgroup itself: cgroup v2 lets no process into a cgroup whose
// children have controllers delegated to them, which is what a pod's (or,
// for ctr, a namespace's) cgroup with any other container under it is,
// and the move fails with EBUSY.

// cgroupRecord, in the sandbox's state directory, names the VM's cgroup
// for CleanupSandbox after a shim's death (the spec is gone by then).
const cgroupRecord = "virt-cgroup"

// vmCgroup is the cgroup the VM's process joins: the sandbox container's
// cgroupsPath when it is a cgroupfs-style one below the root, else ""
// (the process stays in the shim's cgroup).
func vmCgroup(req *handler.SandboxRequest) string {
	if req.Spec == nil || req.Spec.Linux == nil {
		return ""
	}
	p := req.Spec.Linux.CgroupsPath
	if !strings.HasPrefix(p, "/") {
		return "" // systemd-style ("slice:prefix:name"): not handled yet
	}
	p = path.Clean(p)
	if p == "/" {
		return ""
	}
	return p
}

// createVMCgroup makes the VM's cgroup and records it in stateDir.
func createVMCgroup(stateDir, cg string) error {
	if cg == "" {
		return nil
	}
	if err := os.WriteFile(filepath.Join(stateDir, cgroupRecord), []byte(cg), 0o600); err != nil {
		return err
	}
	if err := cgroups.Create(cg); err != nil {
		return fmt.Errorf("the VM's cgroup: %w", err)
	}
	return nil
}

// removeVMCgroup removes the cgroup recorded in stateDir, once the VM's
// process has ended, and the record.
func removeVMCgroup(stateDir string) error {
	rec := filepath.Join(stateDir, cgroupRecord)
	b, err := os.ReadFile(rec)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cg := string(b)
	if !strings.HasPrefix(cg, "/") || path.Clean(cg) != cg || cg == "/" {
		return fmt.Errorf("%s names %q, not a cgroup", rec, cg)
	}
	if err := cgroups.Remove(cg); err != nil {
		return err
	}
	return os.Remove(rec)
}
