package virt

import (
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// guestSpec returns the spec the agent gets for a container: what names
// the host is taken out or refused, since the guest cannot see the host.
//
//   - The root is the disk the handler attaches (the agent mounts it).
//   - The cgroup is the guest's /husk/<sandbox>/<container>: a host cgroup
//     path means nothing there, and systemd-style ones cannot be used by
//     the guest's cgroupfs driver.
//   - Namespaces are the container's own in the guest, but those it joins
//     with its pod (ipc, uts, pid by path under a CRI) are the pod's in the
//     guest, and its network is the VM's (guestNamespaces).
//   - Bind mounts are the caller's to turn into binds of guest copies
//     (mountVolumes) before; OCI hooks (host binaries) are refused with
//     a clear error.
func guestSpec(s *specs.Spec, sandboxID, id string) ([]byte, error) {
	if err := refuseHostOnly(s, id); err != nil {
		return nil, err
	}
	g := *s
	g.Root = &specs.Root{Path: "rootfs", Readonly: s.Root != nil && s.Root.Readonly}
	g.Hooks = nil
	if s.Linux != nil {
		l := *s.Linux
		l.CgroupsPath = "/husk/" + sandboxID + "/" + id
		l.Namespaces = guestNamespaces(s.Linux.Namespaces)
		g.Linux = &l
	}
	return json.Marshal(&g)
}

// refuseHostOnly refuses what of a spec only the host can run: OCI hooks
// (host programs).
func refuseHostOnly(s *specs.Spec, id string) error {
	if h := s.Hooks; h != nil && (len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+
		len(h.StartContainer)+len(h.Poststart)+len(h.Poststop)) > 0 {
		return fmt.Errorf("container %s: OCI hooks run host programs, which a VM container cannot: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}
