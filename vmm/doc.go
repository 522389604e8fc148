// Package vmm is husk's built-in virtual machine monitor: a KVM VMM in pure
// Go, in the spirit of Firecracker, built into the shim binary. It imports
// nothing of husk's. The VirtContainer handler's builtin hypervisor
// (runtime/virt/builtin) runs each VM in a process of its own, a re-exec of
// the shim that builds the VM with this package and then confines itself
// (no capabilities, a seccomp allow-list, pivoted into the VM's directory)
// before the guest runs.
//
// Threat model: every vCPU thread runs hostile code from the moment it
// starts, and every byte the guest can write is hostile. Device code reaches
// guest memory only through package memory, whose accesses are bounds- and
// overflow-checked and fail with errors, never panics; virtqueues are walked
// by package virtio, which validates every index, length and address it
// reads, copies descriptors once before checking them, and completes a
// malformed request with length 0 instead of failing the device.
//
// This package is the VM a runtime uses: New builds guest memory, vCPUs,
// the platform's devices, ACPI tables and the loaded kernel from a Config;
// Start, Wait, Stop and Run drive it; the guest's power-off or reboot ends
// it with an ExitReason. AttachDisk and DetachDisk put disks into, and take
// them out of, the empty virtio-blk slots Config.DiskSlots makes, while the
// guest runs. The platform (ports, MMIO windows, GSIs) is in
// layout.go, and docs/vmm.md describes all of it.
//
// The packages, bottom up:
//
//   - memory: guest RAM, one anonymous mapping split around the MMIO hole
//     [3 GiB, 4 GiB); checked slices, little-endian and atomic accessors.
//   - kvm: the KVM ioctls (system, VM, vCPU), typed exits and errors,
//     ioeventfd and irqfd, CPUID normalisation. unsafe lives only in its
//     *_unsafe.go files.
//   - x86: the entry states: 64-bit long mode (GDT, identity page tables,
//     control registers, boot MSRs and FPU) and PVH's 32-bit protected mode.
//   - machine: a VM with memory, irqchip, PIT and vCPUs; the run loop, one
//     goroutine per vCPU locked to its OS thread.
//   - boot: the Linux loaders (bzImage through the 64-bit boot protocol,
//     ELF vmlinux through PVH), the zero page, e820 and initrd placement.
//   - acpi, acpi/aml: the hardware-reduced ACPI tables and the AML encoder
//     their DSDT is written with.
//   - bus: port and MMIO address ranges to devices.
//   - devices/serial, devices/power, devices/boottimer: the 16550A console,
//     the power-off and reset registers, the boot timer.
//   - virtio: the device side of split virtqueues and the Device interface;
//     virtio/mmio the transport; virtio/blk, virtio/rng, virtio/net (over a
//     tap) and virtio/vsock (hybrid vsock over Unix sockets, with the
//     host's Dial through its CONNECT handshake) the devices.
//   - cli: the command line of `huskctl vm run` and cmd/husk-vmm-test.
//   - internal/cleanup: reverse-order unwinding of multi-step setup.
//
// What is not built yet (VIRTIO_F_EVENT_IDX, multi-queue and discard for
// blk, writable hot-plug slots, PVH boots in the harness, ballooning and
// snapshots) is listed in docs/vmm.md.
package vmm
