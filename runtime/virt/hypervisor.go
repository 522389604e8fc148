package virt

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// Hypervisor is a VM backend: "builtin" (husk's VMM, in a confined process
// of its own per VM) or "qemu" (QEMU's q35 machine). It knows nothing of
// containers.
type Hypervisor interface {
	// Name is the backend's name in configuration and in sandbox.vm.
	Name() string
	// Start boots a VM and returns once it runs (the guest may still be
	// booting: the handler waits for the agent). On error nothing is left.
	Start(ctx context.Context, cfg *VMConfig) (VM, error)
	// Cleanup ends what a dead shim left of the VM whose directory is dir
	// (VMConfig.Dir): its process, sockets and files. A VM already gone is
	// not an error.
	Cleanup(ctx context.Context, dir string) error
}

// VMConfig is one VM to start.
type VMConfig struct {
	// ID names the VM (the pod's sandbox id) in logs and process titles.
	ID string
	// Dir is the VM's own directory (mode 0700), for its sockets and
	// state; the backend may create what it needs below it and nothing
	// elsewhere, and Cleanup finds the VM from it.
	Dir string
	// Kernel and Initrd are the guest image's files.
	Kernel, Initrd string
	// KernelParams are the kernel command line's words.
	KernelParams []string
	VCPUs        uint32
	MemoryMiB    uint64
	// DiskSlots is how many empty disk slots the VM has for AttachDisk
	// (containers created after boot); a slot's disk is seen by the guest
	// with the serial AttachDisk gives.
	DiskSlots int
	// Cgroup is the cgroup (a path under each hierarchy's root, as
	// runtime/resource/cgroups names them) the VM's process is put in,
	// "" for none: a pod's VM is accounted to the pod.
	Cgroup string
	// Console receives the guest's serial console; nil discards it.
	Console io.Writer
	// NICs are the VM's virtio-net devices, in order.
	NICs []NIC
	// QEMU configures the qemu backend; other backends ignore it.
	QEMU QEMUConfig
}

// NIC is a virtio-net device of a VM over a tap device the handler made
// in the pod's network namespace and opened (IFF_TAP | IFF_NO_PI, no vnet
// header). The backend hands Tap to its VM's process; the handler closes
// its own descriptor after Start.
type NIC struct {
	// ID names the device (the pod's interface, "eth0").
	ID  string
	Tap *os.File
	// MAC is the guest's address, the pod's interface's: the CNI plugins
	// and the pod's neighbours know it.
	MAC net.HardwareAddr
	MTU int
}

// QEMUConfig is the qemu backend's part of a VM's configuration ([virt.qemu]).
type QEMUConfig struct {
	// Binary is qemu-system-x86_64's absolute path.
	Binary string
	// Accel is "kvm", "tcg", or "auto": KVM where /dev/kvm runs a guest,
	// else TCG.
	Accel string
	// User is the user QEMU runs as, with its groups; "" is the shim's.
	User string
}

// VM is a running VM.
type VM interface {
	// Dial connects to guest vsock port, bounded by ctx.
	Dial(ctx context.Context, port uint32) (net.Conn, error)
	// AttachDisk puts the disk at path into a free slot; the guest sees it
	// with serial (at most 20 bytes) and a config-change interrupt.
	AttachDisk(ctx context.Context, path string, readOnly bool, serial string) error
	// DetachDisk empties the slot holding serial.
	DetachDisk(ctx context.Context, serial string) error
	// Stats returns the VM's counters.
	Stats(ctx context.Context) (VMStats, error)
	// Pid is the process that runs the VM (0 if none of its own).
	Pid() int
	// Stop ends the VM and waits for it, bounded by ctx; then its
	// resources are released. Stopping a VM that has ended is not an error.
	Stop(ctx context.Context) error
	// Done is closed when the VM has ended, by Stop or on its own; Err
	// then says why (nil for a guest power-off).
	Done() <-chan struct{}
	Err() error
}

// VMStats are a VM's counters, for the shim's metrics.
type VMStats struct {
	// Exits counts the vCPUs' exits to the VMM, by reason.
	Exits map[string]uint64
	// MemoryMiB is the guest's memory size; RSSBytes what the VM's process
	// holds in RAM (guest memory touched included).
	MemoryMiB uint64
	RSSBytes  uint64
	Disks     []DiskStats
	Uptime    time.Duration
}

// DiskStats counts one disk's requests.
type DiskStats struct {
	Serial                  string
	Reads, Writes           uint64
	BytesRead, BytesWritten uint64
}

// ErrNoFreeSlot is AttachDisk's error when every disk slot is taken.
var ErrNoFreeSlot = errors.New("no free disk slot")
