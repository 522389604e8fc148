// Package boot loads a Linux kernel into guest memory the way a boot
// loader would: a bzImage through the 64-bit boot protocol (version 2.12
// or later, entered at startup_64, 0x200 past the protected-mode code), or
// an ELF vmlinux through its PVH entry point when it has one. It writes the
// zero page (boot_params) or PVH start info with an e820 map that steps
// around the MMIO hole, the command line, and the initrd below the highest
// address the kernel accepts.
//
// The kernel image comes from the operator, not the guest, but it is still
// parsed defensively: every offset and size read from it is checked against
// the image and guest RAM, and a short or inconsistent image is an error
// that says which field is wrong.
package boot

import (
	"errors"
	"fmt"

	"github.com/huskrt/husk/vmm/memory"
)

// Guest physical layout below 1 MiB, around package x86's boot tables
// (GDT at 0x500, zero page at 0x7000, stack below 0x9000, page tables at
// 0x9000-0xefff).
const (
	// PVHStartInfo is where hvm_start_info, its module list and memory map
	// go for a PVH boot.
	PVHStartInfo = 0x6000
	// CmdlineAddr is where the kernel command line is written.
	CmdlineAddr = 0x2_0000
	// MaxCmdline bounds the command line, with its NUL, whatever the kernel
	// header allows: it must fit below EBDAStart.
	MaxCmdline = 0x1_0000
	// EBDAStart is where the BIOS's extended data area would begin; RAM
	// below it is usable, as on a PC.
	EBDAStart = 0x9_fc00
	// ACPIStart and ACPIEnd bound the BIOS area where ACPI tables (and the
	// RSDP, which Linux also scans for there) are placed.
	ACPIStart = 0xe_0000
	ACPIEnd   = 0x10_0000
	// KernelAddr is where a bzImage's protected-mode code is loaded (its
	// code32_start); the decompressor relocates itself from there.
	KernelAddr = 0x10_0000
)

// E820 memory types (ACPI 6.5, table 15.1).
const (
	E820RAM      = 1
	E820Reserved = 2
	E820ACPI     = 3
)

// E820Entry is one range of the BIOS memory map.
type E820Entry struct {
	Addr uint64
	Size uint64
	Type uint32
}

// ErrTooSmall reports guest RAM that cannot hold the kernel, initrd and
// boot structures.
var ErrTooSmall = errors.New("guest memory too small")

// E820 returns the memory map of mem: RAM below the EBDA, the EBDA and
// BIOS area (where the ACPI tables live) reserved, RAM from 1 MiB to the
// MMIO hole, and RAM above 4 GiB if there is any. The hole itself is left
// out: it is not memory.
func E820(mem *memory.Memory) ([]E820Entry, error) {
	regions := mem.Regions()
	low := regions[0]
	if low.GPA != 0 || low.End() <= ACPIEnd {
		return nil, fmt.Errorf("%w: %d bytes below the MMIO hole, need more than %#x", ErrTooSmall, low.End(), ACPIEnd)
	}
	m := []E820Entry{
		{0, EBDAStart, E820RAM},
		{EBDAStart, 0xa_0000 - EBDAStart, E820Reserved},
		{ACPIStart, ACPIEnd - ACPIStart, E820Reserved},
		{ACPIEnd, low.End() - ACPIEnd, E820RAM},
	}
	for _, r := range regions[1:] {
		m = append(m, E820Entry{r.GPA, uint64(len(r.Host)), E820RAM})
	}
	return m, nil
}
