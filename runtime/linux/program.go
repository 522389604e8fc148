package linux

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/handler"
)

// Program decides what a libcontainer container runs, for handlers built on
// this one: runtime/wasm makes its runner the process of Wasm containers,
// so that a module runs inside the container's namespaces and cgroup with
// everything else (rootfs, mounts, stdio, signals, stats, OOM) exactly as
// for a native container. Create uses one Program per container.
type Program interface {
	// Prepare is called once the container's rootfs is mounted at rootfs (a
	// host path) and before the container is created. It may change spec,
	// the handler's copy of the request's: replace slices and pointed-to
	// structs rather than writing through them.
	Prepare(ctx context.Context, req *handler.CreateRequest, spec *specs.Spec, rootfs string) error
	// PrepareExec may change an exec's process (a copy) before it is
	// launched. root is where the shim sees the container's root, with the
	// container's mounts: /proc/<init pid>/root.
	PrepareExec(ctx context.Context, execID string, p *specs.Process, root string) error
	// Release frees what Prepare set up. It is called once: when the
	// container is deleted, or when its creation fails after Prepare.
	Release(ctx context.Context) error
}
