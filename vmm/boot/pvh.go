package boot

import (
	"encoding/binary"
	"fmt"

	"github.com/huskrt/husk/vmm/memory"
)

// struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h),
// version 1, with its module list and memory map laid out after it.
const (
	pvhMagic        = 0x336e_c578
	pvhVersion      = 1
	pvhModListAddr  = PVHStartInfo + 0x40
	pvhModEntrySize = 32
	pvhMemMapAddr   = pvhModListAddr + pvhModEntrySize
	pvhMemEntrySize = 24
)

// startInfo is what a PVH kernel learns from its loader.
type startInfo struct {
	cmdlineAddr uint64
	initrdAddr  uint64
	initrdSize  uint64
	rsdp        uint64
	e820        []E820Entry
}

// write writes hvm_start_info at PVHStartInfo, the initrd as its only
// module, and the memory map (e820 types are the PVH types).
func (s *startInfo) write(mem *memory.Memory) error {
	le := binary.LittleEndian
	end := pvhMemMapAddr + pvhMemEntrySize*uint64(len(s.e820))
	b := make([]byte, end-PVHStartInfo)
	le.PutUint32(b[0:], pvhMagic)
	le.PutUint32(b[4:], pvhVersion)
	if s.initrdSize > 0 {
		le.PutUint32(b[12:], 1) // nr_modules
		le.PutUint64(b[16:], pvhModListAddr)
		m := b[pvhModListAddr-PVHStartInfo:]
		le.PutUint64(m[0:], s.initrdAddr)
		le.PutUint64(m[8:], s.initrdSize)
	}
	le.PutUint64(b[24:], s.cmdlineAddr)
	le.PutUint64(b[32:], s.rsdp)
	le.PutUint64(b[40:], pvhMemMapAddr)
	le.PutUint32(b[48:], uint32(len(s.e820)))
	for i, e := range s.e820 {
		m := b[pvhMemMapAddr-PVHStartInfo+pvhMemEntrySize*uint64(i):]
		le.PutUint64(m[0:], e.Addr)
		le.PutUint64(m[8:], e.Size)
		le.PutUint32(m[16:], e.Type)
	}
	if err := mem.WriteAt(b, PVHStartInfo); err != nil {
		return fmt.Errorf("write PVH start info: %w", err)
	}
	return nil
}
