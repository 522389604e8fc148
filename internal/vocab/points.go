package vocab

import "slices"

// The hook points: the named steps of resource setup at which husk asks
// hook modules (docs/hooks.md). Names are stable once published.
const (
	SandboxCreate    = "sandbox.create"
	SandboxVM        = "sandbox.vm"
	SandboxNetwork   = "sandbox.network"
	ContainerCreate  = "container.create"
	ContainerRootfs  = "container.rootfs"
	ContainerMount   = "container.mount"
	ContainerCgroups = "container.cgroups"
	ContainerStart   = "container.start"
	ProcessExec      = "process.exec"
	ContainerUpdate  = "container.update"
	ContainerDelete  = "container.delete"
	SandboxDelete    = "sandbox.delete"
)

// points is every point, in the order of docs/hooks.md (the order a pod's
// life asks them in).
var points = [...]string{
	SandboxCreate, SandboxVM, SandboxNetwork, ContainerCreate, ContainerRootfs,
	ContainerMount, ContainerCgroups, ContainerStart, ProcessExec,
	ContainerUpdate, ContainerDelete, SandboxDelete,
}

// Points returns every point's name, in documentation order.
func Points() []string { return slices.Clone(points[:]) }

// IsPoint reports whether name is a point husk knows.
func IsPoint(name string) bool { return slices.Contains(points[:], name) }
