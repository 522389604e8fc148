package virt

import specs "github.com/opencontainers/runtime-spec/specs-go"

// podNamespaceMark is the path guestNamespaces gives a namespace that
// joins the pod's: the agent (agent/podns.go) takes any path on an ipc,
// uts or pid namespace to mean "the pod's namespace of that type in the
// guest", since a host path means nothing there.
const podNamespaceMark = "pod"

// guestNamespaces maps a container's namespaces on the host to the guest.
// The network is the VM's (dropped: the container stays in the guest's).
// Under a CRI a container joins its pod's namespaces by path (the pause
// container's /proc/<pid>/ns/...): for ipc, uts and pid, that becomes the
// pod's namespace in the guest, which every container of the pod that
// asks joins (pid only under shareProcessNamespace, as the CRI asks only
// then). Other types get a namespace of their own, as before. A namespace
// without a path is the container's own; a type absent from the spec
// (hostIPC, hostPID) is the VM's, the guest being the pod's host. The
// cgroup namespace is always the container's own: the guest runs cgroup
// v2, where a container sees its own cgroup as the root (as runc gives a
// CRI container on a cgroup v2 host), whatever the host runs.
func guestNamespaces(nss []specs.LinuxNamespace) []specs.LinuxNamespace {
	out := []specs.LinuxNamespace{}
	cgroupns := false
	for _, ns := range nss {
		if ns.Type == specs.CgroupNamespace {
			cgroupns = true
		}
		switch {
		case ns.Type == specs.NetworkNamespace:
			continue
		case ns.Path != "" && (ns.Type == specs.IPCNamespace || ns.Type == specs.UTSNamespace || ns.Type == specs.PIDNamespace):
			out = append(out, specs.LinuxNamespace{Type: ns.Type, Path: podNamespaceMark})
		default:
			out = append(out, specs.LinuxNamespace{Type: ns.Type})
		}
	}
	if !cgroupns {
		out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return out
}
