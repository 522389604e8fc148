package virt

import (
	"fmt"
	"runtime"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// hostResources reports what this host has to give a VM: its online CPUs
// and its memory in MiB. A variable so that tests can be a smaller host.
var hostResources = func() (cpus uint32, memoryMiB uint64, err error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, 0, fmt.Errorf("sysinfo: %w", err)
	}
	return uint32(runtime.NumCPU()), uint64(si.Totalram) * uint64(si.Unit) >> 20, nil
}

// withinLimits checks a pod's VM, as the configuration and the hooks at
// sandbox.vm left it, against what the operator allows ([virt] max_vcpus,
// max_memory_mib) and, where those are 0, what the host has: a hook can
// shrink a VM but never make it larger than the node can hold. Errors
// wrap errdefs.ErrInvalidArgument and name the bound.
func withinLimits(vm *handler.VM, cfg config.Virt, host func() (uint32, uint64, error)) error {
	if err := vm.Check(); err != nil {
		return err
	}
	maxCPUs, maxMiB := cfg.MaxVCPUs, cfg.MaxMemoryMiB
	cpuBound, memBound := "virt.max_vcpus", "virt.max_memory_mib"
	if maxCPUs == 0 || maxMiB == 0 {
		cpus, mib, err := host()
		if err != nil {
			return err
		}
		if maxCPUs == 0 {
			maxCPUs, cpuBound = cpus, "the host's online CPUs"
		}
		if maxMiB == 0 {
			maxMiB, memBound = mib, "the host's memory"
		}
	}
	if vm.VCPUs > maxCPUs {
		return fmt.Errorf("VM of %d vCPUs: more than %s (%d): %w", vm.VCPUs, cpuBound, maxCPUs, errdefs.ErrInvalidArgument)
	}
	if vm.MemoryMiB > maxMiB {
		return fmt.Errorf("VM of %d MiB: more than %s (%d MiB): %w", vm.MemoryMiB, memBound, maxMiB, errdefs.ErrInvalidArgument)
	}
	return nil
}
