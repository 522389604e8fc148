// Package x86 sets up the x86-64 state a vCPU starts in: 64-bit long mode
// with a flat GDT and identity-mapped page tables written into guest
// memory, the boot MSRs and a sane FPU, as the Linux 64-bit boot protocol
// expects and as Firecracker does.
package x86

import (
	"encoding/binary"
	"fmt"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/memory"
)

// Where the boot structures live in guest memory (below 1 MiB, clear of
// the zero page at 0x7000 and of a kernel loaded at 1 MiB).
const (
	GDTAddr   = 0x500
	IDTAddr   = 0x520
	ZeroPage  = 0x7000
	BootStack = 0x8ff0 // initial RSP, growing down
	PML4Addr  = 0x9000
	PDPTAddr  = 0xa000
	PDAddr    = 0xb000 // four page directories, 0xb000-0xefff
)

// IdentityMapSize is how much of the guest physical space the boot page
// tables map 1:1, with 2 MiB pages: all of it below 4 GiB, so RAM and the
// MMIO hole are both reachable before the kernel builds its own tables.
const IdentityMapSize = 4 << 30

// GDT selectors: null, 64-bit code, data, TSS.
const (
	CodeSelector = 1 << 3
	DataSelector = 2 << 3
	TSSSelector  = 3 << 3
)

// gdt is the boot GDT in the packed flags form Firecracker uses:
// flags (bits 15-12 G, D/B, L, AVL; 7-0 access byte), base, limit.
var gdt = [4]struct {
	flags uint16
	base  uint32
	limit uint32
}{
	{0, 0, 0},
	{0xa09b, 0, 0xfffff}, // code: G, L, present, DPL 0, execute/read, accessed
	{0xc093, 0, 0xfffff}, // data: G, D/B, present, DPL 0, read/write, accessed
	{0x808b, 0, 0xfffff}, // TSS: G, present, 64-bit busy TSS
}

// descriptor encodes a GDT entry as the CPU reads it.
func descriptor(flags uint16, base, limit uint32) uint64 {
	return uint64(base&0xff00_0000)<<32 | uint64(flags&0xf0ff)<<40 |
		uint64(limit&0x000f_0000)<<32 | uint64(base&0x00ff_ffff)<<16 | uint64(limit&0xffff)
}

// segment returns the hidden segment state KVM wants for GDT entry i.
func segment(i int) kvm.Segment {
	e := gdt[i]
	return segmentFrom(uint16(i<<3), e.flags, e.base, e.limit)
}

// segmentFrom returns the hidden state of a segment whose descriptor has
// the given packed flags, base and limit.
func segmentFrom(selector, flags uint16, base, limit uint32) kvm.Segment {
	s := kvm.Segment{
		Base:     uint64(base),
		Limit:    limit,
		Selector: selector,
		Type:     uint8(flags & 0xf),
		S:        uint8(flags>>4) & 1,
		DPL:      uint8(flags>>5) & 3,
		Present:  uint8(flags>>7) & 1,
		AVL:      uint8(flags>>12) & 1,
		L:        uint8(flags>>13) & 1,
		DB:       uint8(flags>>14) & 1,
		G:        uint8(flags>>15) & 1,
	}
	if s.G == 1 {
		s.Limit = s.Limit<<12 | 0xfff // KVM takes the limit in bytes
	}
	return s
}

// Control register bits.
const (
	cr0PE         = 1 << 0
	cr0MP         = 1 << 1
	cr0ET         = 1 << 4
	cr0NE         = 1 << 5
	cr0WP         = 1 << 16
	cr0PG         = 1 << 31
	cr4PAE        = 1 << 5
	cr4OSFXSR     = 1 << 9
	cr4OSXMMEXCPT = 1 << 10
	eferLME       = 1 << 8
	eferLMA       = 1 << 10
)

// Page-table entry bits.
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	ptePageSize = 1 << 7
)

// SetupLongMode writes the GDT, an empty IDT and the identity page tables
// into mem and sets s for 64-bit long mode with paging on: CS the 64-bit
// code segment, the other data segments flat, TR the TSS, CR3 the PML4.
// mem must hold at least the first 64 KiB. Other fields of s (APIC base,
// the interrupt bitmap) are left as KVM reported them.
func SetupLongMode(mem *memory.Memory, s *kvm.Sregs) error {
	var tables [len(gdt) * 8]byte
	for i, e := range gdt {
		binary.LittleEndian.PutUint64(tables[i*8:], descriptor(e.flags, e.base, e.limit))
	}
	if err := mem.WriteAt(tables[:], GDTAddr); err != nil {
		return fmt.Errorf("write GDT: %w", err)
	}
	if err := mem.WriteUint64(IDTAddr, 0); err != nil {
		return fmt.Errorf("write IDT: %w", err)
	}
	if err := writePageTables(mem); err != nil {
		return err
	}

	s.GDT = kvm.DTable{Base: GDTAddr, Limit: uint16(len(tables) - 1)}
	s.IDT = kvm.DTable{Base: IDTAddr, Limit: 7}
	s.CS = segment(1)
	data := segment(2)
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = segment(3)
	s.LDT = kvm.Segment{Unusable: 1}

	s.CR0 = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0PG
	s.CR3 = PML4Addr
	s.CR4 = cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT
	s.EFER = eferLME | eferLMA
	return nil
}

// writePageTables maps [0, IdentityMapSize) 1:1 with 2 MiB pages: one PML4
// entry, four PDPT entries, four full page directories.
func writePageTables(mem *memory.Memory) error {
	const pds = IdentityMapSize >> 30
	page := make([]byte, memory.PageSize)
	binary.LittleEndian.PutUint64(page, PDPTAddr|ptePresent|pteWritable)
	if err := mem.WriteAt(page, PML4Addr); err != nil {
		return fmt.Errorf("write PML4: %w", err)
	}
	clear(page)
	for i := range uint64(pds) {
		binary.LittleEndian.PutUint64(page[8*i:], (PDAddr+i*memory.PageSize)|ptePresent|pteWritable)
	}
	if err := mem.WriteAt(page, PDPTAddr); err != nil {
		return fmt.Errorf("write PDPT: %w", err)
	}
	for d := range uint64(pds) {
		for i := range uint64(512) {
			phys := (d<<30 | i<<21)
			binary.LittleEndian.PutUint64(page[8*i:], phys|ptePresent|pteWritable|ptePageSize)
		}
		if err := mem.WriteAt(page, PDAddr+d*memory.PageSize); err != nil {
			return fmt.Errorf("write page directory %d: %w", d, err)
		}
	}
	return nil
}

// BootRegs returns the general-purpose registers for entering 64-bit code
// at entry: RSI points at the zero page (Linux's boot_params), RSP and RBP
// at the boot stack, RFLAGS has only its reserved bit 1 set.
func BootRegs(entry uint64) kvm.Regs {
	return kvm.Regs{RIP: entry, RSP: BootStack, RBP: BootStack, RSI: ZeroPage, RFLAGS: 2}
}
