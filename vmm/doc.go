// Package vmm is husk's built-in virtual machine monitor: a KVM VMM in pure
// Go that runs inside the shim process, in the spirit of Firecracker. It
// imports nothing of husk's; the VirtContainer handler drives it.
//
// Threat model: every vCPU thread runs hostile code from the moment it
// starts, and every byte the guest can write is hostile. Device code reaches
// guest memory only through package memory, whose accesses are bounds- and
// overflow-checked and fail with errors, never panics; virtqueues are walked
// by package virtio, which validates every index, length and address it
// reads, copies descriptors once before checking them, and completes a
// malformed request with length 0 instead of failing the device.
//
// The packages, bottom up:
//
//   - memory: guest RAM, one anonymous mapping split around the MMIO hole
//     [3 GiB, 4 GiB); checked slices, little-endian and atomic accessors.
//   - kvm: the KVM ioctls (system, VM, vCPU), typed exits and errors,
//     ioeventfd and irqfd, CPUID normalisation. unsafe lives only in its
//     *_unsafe.go files.
//   - x86: the 64-bit boot state: GDT, identity page tables, control
//     registers, boot MSRs and FPU.
//   - virtio: the device side of split virtqueues.
//   - machine: a VM with memory, irqchip, PIT and vCPUs; the run loop, one
//     goroutine per vCPU locked to its OS thread.
//   - internal/cleanup: reverse-order unwinding of multi-step setup.
//
// Not built yet: the Linux boot loaders (bzImage, ELF/PVH), ACPI tables,
// the devices (serial, virtio-mmio, blk, net, vsock, rng), the Go API the
// runtime uses and the nested-KVM harness. See docs/vmm.md.
package vmm
