package hooks

import (
	"reflect"

	"github.com/huskrt/husk/internal/vocab"
)

// Point is a named step of resource setup at which hooks are asked. Names
// are stable once published; an event's schema changes only with its
// version.
type Point string

// The points, in the order of docs/hooks.md (package vocab names them).
const (
	SandboxCreate    Point = vocab.SandboxCreate
	SandboxVM        Point = vocab.SandboxVM
	SandboxNetwork   Point = vocab.SandboxNetwork
	ContainerCreate  Point = vocab.ContainerCreate
	ContainerRootfs  Point = vocab.ContainerRootfs
	ContainerMount   Point = vocab.ContainerMount
	ContainerCgroups Point = vocab.ContainerCgroups
	ContainerStart   Point = vocab.ContainerStart
	ProcessExec      Point = vocab.ProcessExec
	ContainerUpdate  Point = vocab.ContainerUpdate
	ContainerDelete  Point = vocab.ContainerDelete
	SandboxDelete    Point = vocab.SandboxDelete
)

// pointInfo is what the engine knows of a point: its event type and what a
// patch may change there.
type pointInfo struct {
	event reflect.Type // the event struct (EventFor's type)
	rules []rule       // empty: nothing may change
}

// points describes every point vocab lists (a test checks there is one
// for each); it never changes after init.
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

// Points returns every point, in documentation order.
func Points() []Point {
	names := vocab.Points()
	out := make([]Point, len(names))
	for i, n := range names {
		out[i] = Point(n)
	}
	return out
}

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
