// Package qemu is the virt handler's QEMU backend: each pod's VM is a
// qemu-system-x86_64 process (Debian's), a q35 machine with KVM where
// /dev/kvm runs a guest and TCG elsewhere, booting the same guest image
// as the builtin backend. The shim drives it over QMP (a client of its
// own, qmp.go), plugs containers' disks into PCIe root ports after boot,
// and reaches the agent over a channel chosen at Start (vhost-vsock).
package qemu
