package hooks

import (
	"encoding/json"
	"fmt"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Event is a point's event: one of the *Event types below. The JSON
// encoding of each is its published schema, version 1 (docs/hooks.md);
// encoding/json struct tags are the schema's single source.
type Event interface {
	// Point returns the point whose event this is.
	Point() Point
}

// V1 is the "version" member of every event: it always encodes as 1, and
// decoding any other value is an error, so that a patch cannot change it
// and a schema change cannot go unnoticed.
type V1 struct{}

// MarshalJSON returns 1.
func (V1) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

// UnmarshalJSON accepts only 1.
func (*V1) UnmarshalJSON(b []byte) error {
	if string(b) != "1" {
		return fmt.Errorf("event schema version %s, want 1", b)
	}
	return nil
}

// List is a list of strings that encodes as [] rather than null when
// empty, so that a patch can always append to it ("/process/env/-").
type List []string

// MarshalJSON encodes l, nil as [].
func (l List) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(l))
}

// Map is a string map that encodes as {} rather than null when empty, so
// that a patch can always add to it ("/sandbox/annotations/k").
type Map map[string]string

// MarshalJSON encodes m, nil as {}.
func (m Map) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(m))
}

// Sandbox identifies the pod (sandbox) an event is about. Every event
// carries it; Handler and Annotations are filled where known.
type Sandbox struct {
	ID          string `json:"id"`
	Namespace   string `json:"namespace"` // containerd namespace
	Handler     string `json:"handler"`   // linux, wasm or virt
	Annotations Map    `json:"annotations"`
}

// Container identifies the container an event is about.
type Container struct {
	ID string `json:"id"`
	// Image is the name of the image the container was made from, as its
	// client gave it to containerd (docs/hooks.md says where husk takes
	// it from under each client); null when husk does not know it, as
	// for a root filesystem given as a directory (ctr run --rootfs).
	Image NullString `json:"image"`
}

// NullString is a fact an event carries that husk may not know: it encodes
// as a JSON string when known and as null when not (the Go value ""), never
// as "". A policy that needs the fact thus sees that it is unknown, and
// cannot mistake it for a value that simply matches nothing; the member is
// always present, so a JSON Patch "test" can read it either way.
type NullString string

// MarshalJSON encodes "" as null.
func (s NullString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// UnmarshalJSON accepts a string or null (as "").
func (s *NullString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a string or null: %w", err)
	}
	*s = NullString(v)
	return nil
}

// SandboxCreateEvent is sandbox.create: a pod is being set up. A patch may
// change the handler and the annotations.
type SandboxCreateEvent struct {
	Version V1      `json:"version"`
	Sandbox Sandbox `json:"sandbox"`
}

// SandboxVMEvent is sandbox.vm: the VM of a VirtContainer pod is being
// configured. A patch may change vcpus, memory_mib and kernel_params.
type SandboxVMEvent struct {
	Version V1      `json:"version"`
	Sandbox Sandbox `json:"sandbox"`
	VM      VM      `json:"vm"`
}

// VM is a VM's configuration.
type VM struct {
	Hypervisor   string   `json:"hypervisor"` // builtin or qemu
	VCPUs        uint32   `json:"vcpus"`
	MemoryMiB    uint64   `json:"memory_mib"`
	KernelParams List     `json:"kernel_params"`
	Devices      []Device `json:"devices"`
}

// Device is a device given to a VM.
type Device struct {
	Type string `json:"type"` // such as virtio-blk, virtio-net, virtio-vsock
	ID   string `json:"id,omitempty"`
	Path string `json:"path,omitempty"` // host path backing it, if any
}

// SandboxNetworkEvent is sandbox.network: the interfaces and routes found
// in the pod's network namespace. A patch may only remove elements of
// interfaces and routes (they are then not passed on, e.g. into a VM).
type SandboxNetworkEvent struct {
	Version    V1          `json:"version"`
	Sandbox    Sandbox     `json:"sandbox"`
	Netns      string      `json:"netns"`
	Interfaces []Interface `json:"interfaces"`
	Routes     []Route     `json:"routes"`
}

// Interface is a network interface.
type Interface struct {
	Name      string `json:"name"`
	MAC       string `json:"mac,omitempty"`
	MTU       int    `json:"mtu,omitempty"`
	Addresses List   `json:"addresses"` // CIDR
}

// Route is a route.
type Route struct {
	Destination string `json:"destination"` // CIDR; "default" for the default route
	Gateway     string `json:"gateway,omitempty"`
	Interface   string `json:"interface,omitempty"`
}

// ContainerCreateEvent is container.create: a container is being created
// from its OCI spec. A patch may change anything under /spec.
type ContainerCreateEvent struct {
	Version   V1          `json:"version"`
	Sandbox   Sandbox     `json:"sandbox"`
	Container Container   `json:"container"`
	Spec      *specs.Spec `json:"spec"`
}

// ContainerRootfsEvent is container.rootfs: the container's root
// filesystem is being mounted. A patch may change readonly.
type ContainerRootfsEvent struct {
	Version   V1            `json:"version"`
	Sandbox   Sandbox       `json:"sandbox"`
	Container Container     `json:"container"`
	Mounts    []RootfsMount `json:"mounts"`
	Readonly  bool          `json:"readonly"`
}

// RootfsMount is one mount making up a root filesystem, as containerd
// passes it (e.g. an overlay with its lowerdir and upperdir options).
type RootfsMount struct {
	Type    string `json:"type"`
	Source  string `json:"source"`
	Target  string `json:"target,omitempty"`
	Options List   `json:"options"`
}

// ContainerMountEvent is container.mount: one mount of the spec is being
// set up. A patch may change its options (e.g. add "ro").
type ContainerMountEvent struct {
	Version   V1        `json:"version"`
	Sandbox   Sandbox   `json:"sandbox"`
	Container Container `json:"container"`
	Mount     Mount     `json:"mount"`
}

// Mount is a mount of a container's spec.
type Mount struct {
	Destination string `json:"destination"`
	Type        string `json:"type"`
	Source      string `json:"source"`
	Options     List   `json:"options"`
}

// ContainerCgroupsEvent is container.cgroups: the container's cgroup is
// being set up. A patch may change resources.
type ContainerCgroupsEvent struct {
	Version     V1                    `json:"version"`
	Sandbox     Sandbox               `json:"sandbox"`
	Container   Container             `json:"container"`
	CgroupsPath string                `json:"cgroups_path"`
	Resources   *specs.LinuxResources `json:"resources"`
}

// ContainerStartEvent is container.start: the container's process is about
// to start. A patch may change its env and user.
type ContainerStartEvent struct {
	Version   V1        `json:"version"`
	Sandbox   Sandbox   `json:"sandbox"`
	Container Container `json:"container"`
	Process   Process   `json:"process"`
}

// ProcessExecEvent is process.exec: a process is about to be executed in
// a running container. A patch may change its env and user.
type ProcessExecEvent struct {
	Version   V1        `json:"version"`
	Sandbox   Sandbox   `json:"sandbox"`
	Container Container `json:"container"`
	ExecID    string    `json:"exec_id"`
	Process   Process   `json:"process"`
}

// Process is a process about to run.
type Process struct {
	Args     List   `json:"args"`
	Env      List   `json:"env"`
	Cwd      string `json:"cwd"`
	Terminal bool   `json:"terminal"`
	User     User   `json:"user"`
}

// User is who a process runs as.
type User struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGIDs []uint32 `json:"additional_gids,omitempty"`
	Username       string   `json:"username,omitempty"`
}

// ContainerUpdateEvent is container.update: the container's resources are
// being changed. Nothing may change; a denial refuses the update.
type ContainerUpdateEvent struct {
	Version   V1                    `json:"version"`
	Sandbox   Sandbox               `json:"sandbox"`
	Container Container             `json:"container"`
	Resources *specs.LinuxResources `json:"resources"`
}

// ContainerDeleteEvent is container.delete: the container is being
// deleted. Audit only.
type ContainerDeleteEvent struct {
	Version   V1         `json:"version"`
	Sandbox   Sandbox    `json:"sandbox"`
	Container Container  `json:"container"`
	Status    ExitStatus `json:"status"`
}

// ExitStatus is how a container's process ended.
type ExitStatus struct {
	ExitCode uint32    `json:"exit_code"`
	ExitedAt time.Time `json:"exited_at,omitzero"`
}

// SandboxDeleteEvent is sandbox.delete: the pod is being torn down. Audit
// only.
type SandboxDeleteEvent struct {
	Version V1      `json:"version"`
	Sandbox Sandbox `json:"sandbox"`
}

// Point returns sandbox.create.
func (SandboxCreateEvent) Point() Point { return SandboxCreate }

// Point returns sandbox.vm.
func (SandboxVMEvent) Point() Point { return SandboxVM }

// Point returns sandbox.network.
func (SandboxNetworkEvent) Point() Point { return SandboxNetwork }

// Point returns container.create.
func (ContainerCreateEvent) Point() Point { return ContainerCreate }

// Point returns container.rootfs.
func (ContainerRootfsEvent) Point() Point { return ContainerRootfs }

// Point returns container.mount.
func (ContainerMountEvent) Point() Point { return ContainerMount }

// Point returns container.cgroups.
func (ContainerCgroupsEvent) Point() Point { return ContainerCgroups }

// Point returns container.start.
func (ContainerStartEvent) Point() Point { return ContainerStart }

// Point returns process.exec.
func (ProcessExecEvent) Point() Point { return ProcessExec }

// Point returns container.update.
func (ContainerUpdateEvent) Point() Point { return ContainerUpdate }

// Point returns container.delete.
func (ContainerDeleteEvent) Point() Point { return ContainerDelete }

// Point returns sandbox.delete.
func (SandboxDeleteEvent) Point() Point { return SandboxDelete }
