package handler

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/huskrt/husk/runtime/config"
)

// Policy asks a pod's hook chain at the steps a handler takes itself. Each
// method asks one point with the step's facts and, on return, leaves in its
// argument what the hooks changed; a denial is an error wrapping
// errdefs.ErrPermissionDenied that names the hook and its reason, and the
// handler must then stop the step and undo what it did.
type Policy interface {
	// VM asks sandbox.vm before a VM is started; hooks may change its
	// vCPUs, memory and kernel parameters within the limits VM.Check
	// enforces.
	VM(ctx context.Context, vm *VM) error
	// Rootfs asks container.rootfs as a container's root filesystem is
	// attached (mounted on the host, or given to a VM as a disk); hooks
	// may make it read-only or writable.
	Rootfs(ctx context.Context, r *Rootfs) error
	// Network asks sandbox.network with what the handler found in the
	// pod's network namespace; hooks may only remove interfaces, their
	// addresses and routes (n is then Network.Subset of the answer), and
	// the handler must not pass on what they removed.
	Network(ctx context.Context, n *Network) error
}

// VM is the shape of a pod's VM as sandbox.vm shows it.
type VM struct {
	// Hypervisor is the backend that runs it (builtin or qemu).
	Hypervisor   string
	VCPUs        uint32
	MemoryMiB    uint64
	KernelParams []string
	Devices      []Device
}

// Device is a device given to a VM, as sandbox.vm shows it.
type Device struct {
	Type string // such as virtio-blk, virtio-net, virtio-vsock
	ID   string
	Path string // host path backing it, if any
}

// Check says whether vm is within the limits any VM has (config.MaxVCPUs
// and the others): 1 to MaxVCPUs vCPUs, MinMemoryMiB to MaxMemoryMiB of
// memory, and kernel parameters that config.CheckKernelParam allows,
// together within MaxKernelParams bytes with their separators. The handler
// bounds its VM further by the host and the configuration. Errors wrap
// errdefs.ErrInvalidArgument.
func (vm *VM) Check() error {
	if vm.VCPUs < 1 || vm.VCPUs > config.MaxVCPUs {
		return fmt.Errorf("vcpus %d: want 1 to %d: %w", vm.VCPUs, config.MaxVCPUs, errdefs.ErrInvalidArgument)
	}
	if vm.MemoryMiB < config.MinMemoryMiB || vm.MemoryMiB > config.MaxMemoryMiB {
		return fmt.Errorf("memory_mib %d: want %d to %d: %w", vm.MemoryMiB, config.MinMemoryMiB, config.MaxMemoryMiB, errdefs.ErrInvalidArgument)
	}
	total := 0
	for _, p := range vm.KernelParams {
		if err := config.CheckKernelParam(p); err != nil {
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		total += len(p) + 1
	}
	if total > config.MaxKernelParams {
		return fmt.Errorf("kernel parameters take %d bytes, at most %d: %w", total, config.MaxKernelParams, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Rootfs is a container's root filesystem as container.rootfs shows it.
type Rootfs struct {
	// Mounts are the mounts containerd prepared for it (empty when the
	// bundle's rootfs was already in place).
	Mounts   []mount.Mount
	Readonly bool
}
