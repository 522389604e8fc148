package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/x86"
)

// The PVH entry note: ELF note "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, whose
// descriptor is the 32-bit physical entry point (Linux writes 8 bytes).
const (
	xenNoteName      = "Xen"
	xenNotePhys32    = 18
	vmlinuxAlignment = 0x100_0000 // what Linux's own header says for x86-64
)

// ErrNotELF reports an ELF image husk cannot boot.
var ErrNotELF = errors.New("not a bootable x86-64 ELF kernel")

// loadELF loads an ELF vmlinux's PT_LOAD segments at their physical
// addresses. With a PVH note it boots through PVH; without, it enters
// e_entry (Linux links vmlinux with the physical address of startup_64
// there) with a zero page whose setup header it makes up, as Firecracker
// does.
func loadELF(mem *memory.Memory, cfg Config, e820 []E820Entry) (Entry, error) {
	f, err := elf.NewFile(cfg.Kernel)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrNotELF, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return Entry{}, fmt.Errorf("%w: class %v, machine %v, type %v", ErrNotELF, f.Class, f.Machine, f.Type)
	}
	kernelEnd := uint64(0)
	pvh, hasPVH := uint64(0), false
	for i, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			end, err := loadSegment(mem, cfg.Kernel, p)
			if err != nil {
				return Entry{}, fmt.Errorf("%w: segment %d: %w", ErrBadImage, i, err)
			}
			kernelEnd = max(kernelEnd, end)
		case elf.PT_NOTE:
			if e, ok := pvhEntry(p); ok {
				pvh, hasPVH = e, true
			}
		}
	}
	if kernelEnd == 0 {
		return Entry{}, fmt.Errorf("%w: no loadable segment", ErrNotELF)
	}
	if err := writeCmdline(mem, cfg.Cmdline, MaxCmdline-1); err != nil {
		return Entry{}, err
	}
	initrd, err := placeInitrd(mem, cfg.Initrd, kernelEnd, 1<<32-1)
	if err != nil {
		return Entry{}, err
	}
	if hasPVH {
		s := startInfo{cmdlineAddr: CmdlineAddr, initrdAddr: initrd, initrdSize: imageSize(cfg.Initrd), rsdp: cfg.RSDP, e820: e820}
		if err := s.write(mem); err != nil {
			return Entry{}, err
		}
		return Entry{Mode: ModePVH, Addr: pvh, Param: PVHStartInfo, InitrdAddr: initrd}, nil
	}
	z := zeroPage{
		header:      vmlinuxHeader(),
		cmdlineAddr: CmdlineAddr,
		initrdAddr:  initrd,
		initrdSize:  imageSize(cfg.Initrd),
		rsdp:        cfg.RSDP,
		e820:        e820,
	}
	if err := writeZeroPage(mem, &z); err != nil {
		return Entry{}, err
	}
	return Entry{Mode: Mode64, Addr: f.Entry, Param: x86.ZeroPage, InitrdAddr: initrd}, nil
}

// loadSegment reads a PT_LOAD segment to its physical address and zeroes
// the rest of its memory size. It returns the segment's end.
func loadSegment(mem *memory.Memory, image Image, p *elf.Prog) (uint64, error) {
	if p.Filesz > p.Memsz {
		return 0, fmt.Errorf("file size %#x larger than memory size %#x", p.Filesz, p.Memsz)
	}
	size := imageSize(image)
	if p.Off > size || p.Filesz > size-p.Off {
		return 0, fmt.Errorf("[%#x, +%#x) outside the %d-byte image", p.Off, p.Filesz, size)
	}
	dst, err := mem.Slice(p.Paddr, p.Memsz)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrTooSmall, err)
	}
	if err := readInto(image, dst[:p.Filesz], int64(p.Off)); err != nil {
		return 0, err
	}
	clear(dst[p.Filesz:])
	return p.Paddr + p.Memsz, nil
}

// pvhEntry looks for the PVH entry note in a PT_NOTE segment.
func pvhEntry(p *elf.Prog) (uint64, bool) {
	const maxNotes = 1 << 16 // notes segments are small; do not read a huge one
	if p.Filesz > maxNotes {
		return 0, false
	}
	b, err := io.ReadAll(p.Open())
	if err != nil {
		return 0, false
	}
	le := binary.LittleEndian
	align4 := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		b = b[12:]
		nameEnd := align4(namesz)
		if nameEnd > uint64(len(b)) || align4(descsz) > uint64(len(b))-nameEnd {
			return 0, false
		}
		name := string(bytes.TrimRight(b[:namesz], "\x00"))
		desc := b[nameEnd : nameEnd+descsz]
		b = b[nameEnd+align4(descsz):]
		if name != xenNoteName || typ != xenNotePhys32 {
			continue
		}
		switch len(desc) {
		case 4:
			return uint64(le.Uint32(desc)), true
		case 8:
			return le.Uint64(desc), true
		}
	}
	return 0, false
}

// vmlinuxHeader makes up the part of a bzImage setup header that the
// kernel's 64-bit entry reads when no bzImage supplied one.
func vmlinuxHeader() []byte {
	h := make([]byte, hdrEnd-hdrSetupSects)
	le := binary.LittleEndian
	at := func(off int) []byte { return h[off-hdrSetupSects:] }
	le.PutUint16(at(hdrBootFlag), bootFlagValue)
	le.PutUint32(at(hdrMagic), magicValue)
	le.PutUint16(at(hdrVersion), minVersion)
	le.PutUint32(at(hdrKernelAlign), vmlinuxAlignment)
	le.PutUint32(at(hdrCmdlineSize), MaxCmdline-1)
	return h
}
