package virt

import (
	"encoding/json"
	"fmt"
	"slices"

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
//   - Bind mounts of host paths and OCI hooks (host binaries) are refused
//     with a clear error: volumes reach VMs with part 2 of the handler.
func guestSpec(s *specs.Spec, sandboxID, id string) ([]byte, error) {
	g := *s
	g.Root = &specs.Root{Path: "rootfs", Readonly: s.Root != nil && s.Root.Readonly}
	if g.Hooks != nil && (len(g.Hooks.Prestart)+len(g.Hooks.CreateRuntime)+len(g.Hooks.CreateContainer)+
		len(g.Hooks.StartContainer)+len(g.Hooks.Poststart)+len(g.Hooks.Poststop)) > 0 {
		return nil, fmt.Errorf("container %s: OCI hooks run host programs, which a VM container cannot: %w", id, errdefs.ErrInvalidArgument)
	}
	g.Hooks = nil
	for _, m := range s.Mounts {
		if m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
			return nil, fmt.Errorf("container %s: bind mount of host path %s at %s: host directories do not reach VM containers yet: %w",
				id, m.Source, m.Destination, errdefs.ErrInvalidArgument)
		}
	}
	if s.Linux != nil {
		l := *s.Linux
		l.CgroupsPath = "/husk/" + sandboxID + "/" + id
		l.Namespaces = guestNamespaces(s.Linux.Namespaces)
		g.Linux = &l
	}
	return json.Marshal(&g)
}
