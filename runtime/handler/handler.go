// Package handler is the contract between husk's runtime and its handlers
// (runtime/linux, runtime/wasm, runtime/virt): the small interfaces a
// handler implements and the requests it is given. Of husk it imports only
// the config it hands handlers (whose own imports are leaves): neither the
// hook engine nor wazero nor the shim's persisted state, so that the guest
// agent can link the Linux engine alone (test/boundaries checks it). Handlers know nothing of
// containerd's task API; the runtime keeps the lifecycle states and turns
// exits into events.
package handler

import (
	"context"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
)

// Stdio names where a process's standard streams go, as containerd hands them
// over: FIFO paths, or file:// and binary:// URIs. Empty means /dev/null.
type Stdio struct {
	Stdin    string
	Stdout   string
	Stderr   string
	Terminal bool
}

// CreateRequest is what a handler needs to create a container.
type CreateRequest struct {
	ID        string
	Namespace string
	Bundle    string
	// SandboxID is the pod the container belongs to (its own id if none).
	SandboxID string
	// StateDir is the sandbox's state directory; a handler keeps its own
	// state for the container below it.
	StateDir string
	Spec     *specs.Spec
	// Rootfs are the mounts containerd prepared (an overlay snapshot, usually);
	// empty when the bundle's rootfs is already in place (ctr run --rootfs).
	Rootfs []mount.Mount
	Stdio  Stdio
	Config *config.Config
	// ContainerdAddress is containerd's gRPC socket ("" when unknown), for
	// a handler that must read the container's image (a Wasm artifact's
	// module is a layer, not a file in the rootfs).
	ContainerdAddress string
	// Policy asks the pod's hooks at the container's steps the handler
	// takes itself (container.rootfs); nil asks nothing.
	Policy Policy
	// PodSandbox is set for the CRI's sandbox (pause) container, which
	// only holds the pod's namespaces: a handler whose sandbox holds them
	// itself (a VM) need not run it.
	PodSandbox bool
}

// Handler runs containers of one kind (linux, wasm, virt). Containers live
// in a pod's Sandbox, which the handler sets up for the pod's first
// container of its kind and closes after the last.
type Handler interface {
	Name() string
	// NewSandbox sets up the handler's part of a pod: nothing much for
	// containers on the host, the VM for virt. On error nothing is left
	// behind.
	NewSandbox(ctx context.Context, req *SandboxRequest) (Sandbox, error)
	// Cleanup removes what a dead shim left of container id (processes,
	// cgroups, mounts, handler state under stateDir) and returns the init's
	// pid if it knew it. A container already gone is not an error.
	Cleanup(ctx context.Context, stateDir, id, bundle string) (pid int, err error)
	// CleanupSandbox removes what a dead shim left of the pod's sandbox
	// itself (a VM's process and files under stateDir), once its last
	// container was cleaned up. A sandbox already gone is not an error.
	CleanupSandbox(ctx context.Context, stateDir string) error
}

// Sandbox is a handler's part of one pod. The runtime calls Create
// concurrently for different containers, and Close once, after every
// container it created was deleted (or never was).
type Sandbox interface {
	// Create sets the container up and creates its init process, stopped
	// before the user's program runs. On error nothing is left behind.
	Create(ctx context.Context, req *CreateRequest) (Container, error)
	// Close ends the sandbox and releases all it holds.
	Close(ctx context.Context) error
}

// SandboxRequest is what a handler needs to set up a pod's sandbox.
type SandboxRequest struct {
	ID        string
	Namespace string
	// StateDir is the sandbox's state directory; a handler keeps its own
	// state below it, under its own name.
	StateDir string
	// Spec is the spec of the container that brings the sandbox up (the
	// pod's sandbox container under a CRI): its annotations and cgroups
	// path describe the pod.
	Spec *specs.Spec
	// Resources is the pod's sizing as the CRI gave it (the sandbox
	// container's io.kubernetes.cri.sandbox-* annotations: the sum of its
	// containers' limits); nil when it gave none.
	Resources *specs.LinuxResources
	Config    *config.Config
	// Policy asks the pod's hooks at the sandbox's steps the handler takes
	// itself (sandbox.vm); nil asks nothing.
	Policy Policy
}

// Container is a handler's container. The runtime serialises lifecycle calls
// and checks states before calling in, so implementations may assume a legal
// order.
type Container interface {
	// Init is the container's first process.
	Init() Process
	// Exec prepares (but does not start) another process in the container.
	Exec(ctx context.Context, id string, spec *specs.Process, stdio Stdio) (Process, error)
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Update(ctx context.Context, res *specs.LinuxResources) error
	// Stats returns the container's resource usage as a containerd metrics
	// message (cgroups v1 or v2 stats), ready to be marshalled into an Any.
	Stats(ctx context.Context) (any, error)
	Pids(ctx context.Context) ([]int, error)
	// OOM returns a channel that receives once per OOM kill in the container
	// (one pending receive may stand for several) and is closed once the
	// init has exited, after every kill up to its exit was sent: the init's
	// exit is reported only after that. nil: OOM kills are not watched.
	OOM() <-chan struct{}
	// Delete removes everything the container holds (processes, cgroups,
	// mounts, state). It is called once, after the init process has exited
	// or was never started.
	Delete(ctx context.Context) error
}

// Process is one process of a container: its init or an exec.
type Process interface {
	// Pid is 0 until the process exists.
	Pid() int
	Start(ctx context.Context) error
	// Signal sends sig to the process, or with all to every process of the
	// container.
	Signal(ctx context.Context, sig syscall.Signal, all bool) error
	ResizePty(ctx context.Context, width, height uint32) error
	CloseStdin(ctx context.Context) error
	// Done is closed when the process has exited; Exit then tells how.
	Done() <-chan struct{}
	Exit() Exit
	// Close waits (bounded) for the process's output to be copied out and
	// releases its I/O. Called when the process is deleted.
	Close(ctx context.Context) error
}

// Exit is how a process ended. Status follows the shell convention: the exit
// code, or 128+n for a process killed by signal n.
type Exit struct {
	Pid    int
	Status int
	At     time.Time
}

// ExitStatus converts a wait status to Exit.Status.
func ExitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// SmartCreator is a Sandbox that can take a container that may or may not
// be of its handler's kind (crun's "wasm-smart"): it runs the container as
// its kind when its program is (a Wasm module, for the wasm handler) and
// natively otherwise. Finding out needs the container's rootfs mounted,
// which only the handler does, hence a method rather than a look before
// choosing.
type SmartCreator interface {
	// CreateSmart creates the container and says which handler's kind it
	// turned out to be. The sandbox records the smart handler either way:
	// its handler's Cleanup must handle both kinds.
	CreateSmart(ctx context.Context, req *CreateRequest) (c Container, kind string, err error)
}

// Measured is a Sandbox that keeps counters of its own, which the shim's
// metrics export with the sandbox's id: a VM's exits, memory and disks.
type Measured interface {
	Measure(ctx context.Context) ([]Measure, error)
}

// Measure is one value of a sandbox's: a counter or a gauge.
type Measure struct {
	// Name is the metric's name without husk's prefix, such as
	// "vm_exits_total".
	Name    string
	Help    string
	Counter bool
	// Labels are the value's own (the sandbox's id is added).
	Labels map[string]string
	Value  float64
}
