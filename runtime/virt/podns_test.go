package virt

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestGuestNamespaces: a CRI container's namespaces joined by path become
// the pod's in the guest for ipc, uts and pid; the network is the VM's;
// other paths and namespaces without one are the container's own, and
// every container has a cgroup namespace of its own.
func TestGuestNamespaces(t *testing.T) {
	ns := func(typ specs.LinuxNamespaceType, path string) specs.LinuxNamespace {
		return specs.LinuxNamespace{Type: typ, Path: path}
	}
	tests := []struct {
		name string
		in   []specs.LinuxNamespace
		want []specs.LinuxNamespace
	}{
		{"a container of a CRI pod", []specs.LinuxNamespace{
			ns(specs.PIDNamespace, ""), ns(specs.IPCNamespace, "/proc/42/ns/ipc"), ns(specs.UTSNamespace, "/proc/42/ns/uts"),
			ns(specs.MountNamespace, ""), ns(specs.NetworkNamespace, "/proc/42/ns/net")},
			[]specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns(specs.IPCNamespace, "pod"), ns(specs.UTSNamespace, "pod"), ns(specs.MountNamespace, ""), ns(specs.CgroupNamespace, "")}},
		{"shareProcessNamespace", []specs.LinuxNamespace{ns(specs.PIDNamespace, "/proc/42/ns/pid")},
			[]specs.LinuxNamespace{ns(specs.PIDNamespace, "pod"), ns(specs.CgroupNamespace, "")}},
		{"a container of its own (ctr run)", []specs.LinuxNamespace{
			ns(specs.PIDNamespace, ""), ns(specs.IPCNamespace, ""), ns(specs.UTSNamespace, ""), ns(specs.NetworkNamespace, "")},
			[]specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns(specs.IPCNamespace, ""), ns(specs.UTSNamespace, ""), ns(specs.CgroupNamespace, "")}},
		{"a host path on another type is not joined", []specs.LinuxNamespace{ns(specs.UserNamespace, "/proc/42/ns/user"), ns(specs.CgroupNamespace, "/x")},
			[]specs.LinuxNamespace{ns(specs.UserNamespace, ""), ns(specs.CgroupNamespace, "")}},
		{"hostIPC: no ipc namespace, the VM's", []specs.LinuxNamespace{ns(specs.UTSNamespace, "/proc/42/ns/uts")},
			[]specs.LinuxNamespace{ns(specs.UTSNamespace, "pod"), ns(specs.CgroupNamespace, "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := guestNamespaces(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("guestNamespaces = %+v, want %+v", got, tt.want)
			}
		})
	}
	// Through guestSpec: the host's paths do not reach the guest.
	b, err := guestSpec(&specs.Spec{Linux: &specs.Linux{Namespaces: tests[0].in}}, "pod", "c")
	if err != nil {
		t.Fatal(err)
	}
	var g specs.Spec
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Linux.Namespaces, tests[0].want) {
		t.Errorf("guest spec namespaces %+v, want %+v", g.Linux.Namespaces, tests[0].want)
	}
}

// TestGuestSpecKeepsResources: a container's limits reach the guest in its
// spec (the agent's Linux engine applies them with cgroups there), under
// the guest's cgroup path for it.
func TestGuestSpecKeepsResources(t *testing.T) {
	limit, quota := int64(64<<20), int64(50000)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, CPU: &specs.LinuxCPU{Quota: &quota}}
	b, err := guestSpec(&specs.Spec{Linux: &specs.Linux{Resources: res, CgroupsPath: "/kubepods/pod1/c"}}, "pod", "c")
	if err != nil {
		t.Fatal(err)
	}
	var g specs.Spec
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Linux.Resources, res) {
		t.Errorf("guest spec resources %+v, want %+v", g.Linux.Resources, res)
	}
	if g.Linux.CgroupsPath != "/husk/pod/c" {
		t.Errorf("guest cgroup %q, want /husk/pod/c", g.Linux.CgroupsPath)
	}
}
