package runtime

import (
	"context"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/resource/cgroups"
)

// setupPodCgroup sizes a CRI pod's cgroup from the sandbox sizing
// annotations and, when moveShim is set, moves this shim into it, so that
// everything the pod costs is accounted to the pod.
func (s *Sandbox) setupPodCgroup(ctx context.Context, spec *specs.Spec, moveShim bool) error {
	res, err := SandboxResources(spec.Annotations)
	if err != nil {
		return err
	}
	if s.Handler.Name() == string(config.HandlerVirt) {
		// A VM pod's containers are bounded by cgroups in the guest, and
		// the guest by its VM, which this sizing grows (virt.sizingOf).
		// On the host the pod's cgroup holds the VM: guest memory and the
		// VMM's own, more than the containers' sum these limits are (the
		// kubelet adds a RuntimeClass's overhead to the pod cgroup
		// itself), so they would kill the VM. They are not applied here.
		res = nil
	}
	var cgPath string
	if spec.Linux != nil {
		cgPath = spec.Linux.CgroupsPath
	}
	pod := cgroups.PodPath(cgPath)
	if pod == "" {
		if res != nil || moveShim {
			logging.L(ctx).Warn("pod cgroup unknown (no cgroupsPath below the root): not sized, shim not moved", "cgroupsPath", cgPath)
		}
		return nil
	}
	if res != nil {
		if err := cgroups.SizePod(pod, res); err != nil {
			return err
		}
	}
	if moveShim {
		leaf, err := cgroups.MoveShim(pod, os.Getpid())
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.rec.ShimCgroup = leaf
		s.mu.Unlock()
	}
	return nil
}

// releasePodCgroup undoes setupPodCgroup's move of the shim.
// Preconditions: s.mu is held.
func (s *Sandbox) releasePodCgroupLocked(ctx context.Context) {
	if s.rec.ShimCgroup == "" {
		return
	}
	if err := cgroups.ReleaseShim(s.rec.ShimCgroup, os.Getpid()); err != nil {
		logging.L(ctx).Error("releasing the shim's pod cgroup", "cgroup", s.rec.ShimCgroup, "error", err)
	}
	s.rec.ShimCgroup = ""
}
