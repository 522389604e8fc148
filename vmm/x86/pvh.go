package x86

import (
	"encoding/binary"
	"fmt"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/memory"
)

// pvhGDT is the GDT of a PVH entry (Xen's hvm start ABI, which Linux
// implements in pvh_start_xen): flat 32-bit code and data, and a 32-bit
// TSS, all of which the kernel replaces within a few instructions.
var pvhGDT = [4]struct {
	flags uint16
	base  uint32
	limit uint32
}{
	{0, 0, 0},
	{0xc09b, 0, 0xfffff}, // code: G, D/B (32-bit), present, execute/read, accessed
	{0xc093, 0, 0xfffff}, // data: G, D/B, present, read/write, accessed
	{0x008b, 0, 0x67},    // TSS: present, 32-bit busy TSS, 104 bytes
}

// SetupPVH writes the PVH GDT into mem (at GDTAddr, where the long-mode
// GDT would go) and sets s for the PVH entry state: 32-bit protected mode,
// paging off, CS flat 32-bit code, the data segments flat, TR a 32-bit
// TSS, CR4 and EFER clear.
func SetupPVH(mem *memory.Memory, s *kvm.Sregs) error {
	var tables [len(pvhGDT) * 8]byte
	for i, e := range pvhGDT {
		binary.LittleEndian.PutUint64(tables[i*8:], descriptor(e.flags, e.base, e.limit))
	}
	if err := mem.WriteAt(tables[:], GDTAddr); err != nil {
		return fmt.Errorf("write PVH GDT: %w", err)
	}
	seg := func(i int) kvm.Segment {
		e := pvhGDT[i]
		return segmentFrom(uint16(i<<3), e.flags, e.base, e.limit)
	}
	s.GDT = kvm.DTable{Base: GDTAddr, Limit: uint16(len(tables) - 1)}
	s.IDT = kvm.DTable{}
	s.CS = seg(1)
	data := seg(2)
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = seg(3)
	s.LDT = kvm.Segment{Unusable: 1}
	s.CR0 = cr0PE | cr0ET
	s.CR3, s.CR4, s.EFER = 0, 0, 0
	return nil
}

// PVHRegs returns the general-purpose registers for a PVH entry at entry:
// EBX holds the physical address of the hvm_start_info.
func PVHRegs(entry, startInfo uint64) kvm.Regs {
	return kvm.Regs{RIP: entry, RBX: startInfo, RFLAGS: 2}
}
