package kvm

import (
	"testing"
	"unsafe"
)

// TestStructSizesMatchTheKernelABI pins every struct passed to an ioctl to
// the size <linux/kvm.h> gives it on x86-64 (the sizes are also encoded in
// the ioctl numbers, so a wrong one fails with ENOTTY or corrupts memory).
func TestStructSizesMatchTheKernelABI(t *testing.T) {
	for name, got := range map[string]struct{ got, want uintptr }{
		"kvm_regs":                    {unsafe.Sizeof(Regs{}), 0x90},
		"kvm_sregs":                   {unsafe.Sizeof(Sregs{}), 0x138},
		"kvm_segment":                 {unsafe.Sizeof(Segment{}), 0x18},
		"kvm_dtable":                  {unsafe.Sizeof(DTable{}), 0x10},
		"kvm_fpu":                     {unsafe.Sizeof(FPU{}), 0x1a0},
		"kvm_cpuid_entry2":            {unsafe.Sizeof(CPUIDEntry{}), 0x28},
		"kvm_msr_entry":               {unsafe.Sizeof(MSREntry{}), 0x10},
		"kvm_userspace_memory_region": {unsafe.Sizeof(userspaceMemoryRegion{}), 0x20},
		"kvm_pit_config":              {unsafe.Sizeof(pitConfig{}), 0x40},
		"kvm_ioeventfd":               {unsafe.Sizeof(ioeventfd{}), 0x40},
		"kvm_irqfd":                   {unsafe.Sizeof(irqfd{}), 0x20},
		"kvm_irq_level":               {unsafe.Sizeof(irqLevel{}), 0x8},
		"kvm_sregs.gdt":               {unsafe.Offsetof(Sregs{}.GDT), 192},
		"kvm_sregs.cr0":               {unsafe.Offsetof(Sregs{}.CR0), 224},
		"kvm_sregs.efer":              {unsafe.Offsetof(Sregs{}.EFER), 264},
		"kvm_fpu.fcw":                 {unsafe.Offsetof(FPU{}.FCW), 128},
		"kvm_fpu.mxcsr":               {unsafe.Offsetof(FPU{}.MXCSR), 408},
		"kvm_ioeventfd.flags":         {unsafe.Offsetof(ioeventfd{}.flags), 24},
		"kvm_cpuid2.entries":          {unsafe.Offsetof(cpuid2{}.entries), 8},
		"kvm_msrs.entries":            {unsafe.Offsetof(msrs{}.entries), 8},
	} {
		if got.got != got.want {
			t.Errorf("%s: %#x, want %#x", name, got.got, got.want)
		}
	}
	// The size field of each _IOW/_IOR/_IOWR number (bits 16-29).
	for name, c := range map[string]struct{ req, size uintptr }{
		"KVM_SET_REGS":               {kvmSetRegs, unsafe.Sizeof(Regs{})},
		"KVM_GET_REGS":               {kvmGetRegs, unsafe.Sizeof(Regs{})},
		"KVM_SET_SREGS":              {kvmSetSregs, unsafe.Sizeof(Sregs{})},
		"KVM_GET_SREGS":              {kvmGetSregs, unsafe.Sizeof(Sregs{})},
		"KVM_SET_FPU":                {kvmSetFPU, unsafe.Sizeof(FPU{})},
		"KVM_SET_USER_MEMORY_REGION": {kvmSetUserMemoryRegion, unsafe.Sizeof(userspaceMemoryRegion{})},
		"KVM_CREATE_PIT2":            {kvmCreatePIT2, unsafe.Sizeof(pitConfig{})},
		"KVM_IOEVENTFD":              {kvmIOEventFD, unsafe.Sizeof(ioeventfd{})},
		"KVM_IRQFD":                  {kvmIRQFD, unsafe.Sizeof(irqfd{})},
		"KVM_IRQ_LINE":               {kvmIRQLine, unsafe.Sizeof(irqLevel{})},
		"KVM_SET_IDENTITY_MAP_ADDR":  {kvmSetIdentityMapAddr, 8},
	} {
		if got := (c.req >> 16) & 0x3fff; got != c.size {
			t.Errorf("%s encodes %#x bytes, struct has %#x", name, got, c.size)
		}
	}
}
