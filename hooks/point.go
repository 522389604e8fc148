package hooks

import (
	"reflect"
	"slices"
)

// Point is a named step of resource setup at which hooks are asked. Names
// are stable once published; an event's schema changes only with its
// version.
type Point string

// The points, in the order of docs/hooks.md.
const (
	SandboxCreate    Point = "sandbox.create"
	SandboxVM        Point = "sandbox.vm"
	SandboxNetwork   Point = "sandbox.network"
	ContainerCreate  Point = "container.create"
	ContainerRootfs  Point = "container.rootfs"
	ContainerMount   Point = "container.mount"
	ContainerCgroups Point = "container.cgroups"
	ContainerStart   Point = "container.start"
	ProcessExec      Point = "process.exec"
	ContainerUpdate  Point = "container.update"
	ContainerDelete  Point = "container.delete"
	SandboxDelete    Point = "sandbox.delete"
)

// pointInfo is what the engine knows of a point: its event type and what a
// patch may change there.
type pointInfo struct {
	event reflect.Type // the event struct (EventFor's type)
	rules []rule       // empty: nothing may change
}

// points describes every point; it never changes after init.
var points = map[Point]pointInfo{
	SandboxCreate: {reflect.TypeFor[SandboxCreateEvent](), []rule{
		writable("/sandbox/handler", opAdd|opReplace),
		writable("/sandbox/annotations", opsAll),
	}},
	SandboxVM: {reflect.TypeFor[SandboxVMEvent](), []rule{
		writable("/vm/vcpus", opAdd|opReplace),
		writable("/vm/memory_mib", opAdd|opReplace),
		writable("/vm/kernel_params", opsAll),
	}},
	SandboxNetwork: {reflect.TypeFor[SandboxNetworkEvent](), []rule{
		writable("/interfaces", opRemove),
		writable("/routes", opRemove),
	}},
	ContainerCreate: {reflect.TypeFor[ContainerCreateEvent](), []rule{
		writable("/spec", opsAll),
	}},
	ContainerRootfs: {reflect.TypeFor[ContainerRootfsEvent](), []rule{
		writable("/readonly", opAdd|opReplace),
	}},
	ContainerMount: {reflect.TypeFor[ContainerMountEvent](), []rule{
		writable("/mount/options", opsAll),
	}},
	ContainerCgroups: {reflect.TypeFor[ContainerCgroupsEvent](), []rule{
		writable("/resources", opsAll),
	}},
	ContainerStart: {reflect.TypeFor[ContainerStartEvent](), []rule{
		writable("/process/env", opsAll),
		writable("/process/user", opsAll),
	}},
	ProcessExec: {reflect.TypeFor[ProcessExecEvent](), []rule{
		writable("/process/env", opsAll),
		writable("/process/user", opsAll),
	}},
	ContainerUpdate: {reflect.TypeFor[ContainerUpdateEvent](), nil},
	ContainerDelete: {reflect.TypeFor[ContainerDeleteEvent](), nil},
	SandboxDelete:   {reflect.TypeFor[SandboxDeleteEvent](), nil},
}

// order is the points in documentation order.
var order = []Point{
	SandboxCreate, SandboxVM, SandboxNetwork, ContainerCreate, ContainerRootfs,
	ContainerMount, ContainerCgroups, ContainerStart, ProcessExec,
	ContainerUpdate, ContainerDelete, SandboxDelete,
}

// Points returns every point, in documentation order.
func Points() []Point { return slices.Clone(order) }

// Valid reports whether p is a point husk knows.
func (p Point) Valid() bool {
	_, ok := points[p]
	return ok
}

// Patchable returns the JSON Pointers under which a patch may change p's
// event (RFC 6901 form, such as "/process/env"); none for points where
// nothing may change. A patch may change values at or below these paths,
// never remove one of them itself, and only with the operations
// docs/hooks.md lists.
func (p Point) Patchable() []string {
	info := points[p]
	out := make([]string, len(info.rules))
	for i, r := range info.rules {
		out[i] = r.path.String()
	}
	return out
}
