package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine. Its methods may be called from any
// goroutine; KVM serialises them.
type VM struct {
	fd       int
	mmapSize int
}

// SetMemory maps host as guest physical [gpa, gpa+len(host)) in the given
// slot. host must be page-aligned mmap'd memory that outlives the VM.
func (v *VM) SetMemory(slot uint32, gpa uint64, host []byte) error {
	if v.fd < 0 {
		return ErrClosed
	}
	if len(host) == 0 {
		return fmt.Errorf("memory slot %d: empty region", slot)
	}
	r := &userspaceMemoryRegion{
		slot:          slot,
		guestPhysAddr: gpa,
		memorySize:    uint64(len(host)),
		userspaceAddr: hostAddr(host),
	}
	if _, err := ioctlPtr(v.fd, kvmSetUserMemoryRegion, r); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d [%#x, +%#x): %w", slot, gpa, len(host), err)
	}
	return nil
}

// SetTSSAddr places the three pages Intel VMX needs for real-mode
// emulation; they must not overlap RAM the guest uses or MMIO.
func (v *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctl(v.fd, kvmSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR %#x: %w", addr, err)
	}
	return nil
}

// SetIdentityMapAddr places the one page Intel VMX needs for the identity
// page table of unpaged real-mode guests.
func (v *VM) SetIdentityMapAddr(addr uint64) error {
	if _, err := ioctlPtr(v.fd, kvmSetIdentityMapAddr, &addr); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PIC, IOAPIC and local APICs. It must
// come before the vCPUs are created. GSIs 0-23 then route to the IOAPIC
// pins of the same number (and 0-15 to the PICs too).
func (v *VM) CreateIRQChip() error {
	if _, err := ioctl(v.fd, kvmCreateIRQChip, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT creates the in-kernel i8254 timer, with the PC speaker port
// left to a dummy so it never exits to userspace. Needs the irqchip.
func (v *VM) CreatePIT() error {
	if _, err := ioctlPtr(v.fd, kvmCreatePIT2, &pitConfig{flags: pitSpeakerDummy}); err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// SetIRQLine raises or lowers an irqchip input line.
func (v *VM) SetIRQLine(gsi uint32, high bool) error {
	l := &irqLevel{irq: gsi}
	if high {
		l.level = 1
	}
	if _, err := ioctlPtr(v.fd, kvmIRQLine, l); err != nil {
		return fmt.Errorf("KVM_IRQ_LINE gsi %d: %w", gsi, err)
	}
	return nil
}

// Close closes the VM. Its vCPUs must be closed first for the kernel to
// free it, and guest memory must stay mapped until then.
func (v *VM) Close() error {
	return closeFD(&v.fd)
}

// CreateVCPU creates vCPU id (its initial APIC id) and maps its kvm_run
// structure.
func (v *VM) CreateVCPU(id int) (*VCPU, error) {
	if v.fd < 0 {
		return nil, ErrClosed
	}
	fd, err := ioctl(v.fd, kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	unix.CloseOnExec(int(fd))
	run, err := unix.Mmap(int(fd), 0, v.mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("mmap kvm_run of vCPU %d: %w", id, err)
	}
	return &VCPU{id: id, fd: int(fd), run: run}, nil
}
