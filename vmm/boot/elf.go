package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

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

// What the loader reads of an ELF64 file (the System V ABI's gABI and its
// x86-64 supplement). The loader parses these few fields itself rather
// than with debug/elf, which would bring its section readers (zlib,
// zstd) into every VMM process for a header and a table.
const (
	elfHeaderSize = 64
	elfPhdrSize   = 56
	elfClass64    = 2
	elfDataLE     = 1
	elfVersion    = 1
	elfExec       = 2  // ET_EXEC
	elfX86_64     = 62 // EM_X86_64
	ptLoad        = 1
	ptNote        = 4
	// maxProgs bounds the program headers read (a vmlinux has a handful).
	maxProgs = 256
)

// elfProg is a program header: what the loader uses of it.
type elfProg struct {
	Type                      uint32
	Off, Paddr, Filesz, Memsz uint64
}

// parseELF reads an x86-64 executable's entry point and program headers.
// Every offset and size is checked against the image.
func parseELF(r Image) (entry uint64, progs []elfProg, err error) {
	var h [elfHeaderSize]byte
	if err := readInto(r, h[:], 0); err != nil {
		return 0, nil, fmt.Errorf("%w: header: %w", ErrNotELF, err)
	}
	le := binary.LittleEndian
	class, data, version := h[4], h[5], h[6]
	typ, machine := le.Uint16(h[16:]), le.Uint16(h[18:])
	if class != elfClass64 || data != elfDataLE || version != elfVersion || machine != elfX86_64 || typ != elfExec {
		return 0, nil, fmt.Errorf("%w: class %d, data %d, version %d, machine %d, type %d (want a 64-bit little-endian x86-64 executable)",
			ErrNotELF, class, data, version, machine, typ)
	}
	phoff, phentsize, phnum := le.Uint64(h[32:]), le.Uint16(h[54:]), le.Uint16(h[56:])
	if phentsize != elfPhdrSize || phnum > maxProgs {
		return 0, nil, fmt.Errorf("%w: %d program headers of %d bytes (want at most %d of %d)", ErrNotELF, phnum, phentsize, maxProgs, elfPhdrSize)
	}
	size, n := imageSize(r), uint64(phnum)*elfPhdrSize
	if phoff > size || n > size-phoff {
		return 0, nil, fmt.Errorf("%w: program headers [%#x, +%#x) outside the %d-byte image", ErrNotELF, phoff, n, size)
	}
	b := make([]byte, n)
	if err := readInto(r, b, int64(phoff)); err != nil {
		return 0, nil, fmt.Errorf("%w: program headers: %w", ErrNotELF, err)
	}
	for i := range int(phnum) {
		ph := b[i*elfPhdrSize:]
		p := elfProg{Type: le.Uint32(ph), Off: le.Uint64(ph[8:]), Paddr: le.Uint64(ph[24:]), Filesz: le.Uint64(ph[32:]), Memsz: le.Uint64(ph[40:])}
		if p.Off > math.MaxInt64 || p.Filesz > math.MaxInt64-p.Off {
			return 0, nil, fmt.Errorf("%w: program header %d: offset %#x and size %#x", ErrNotELF, i, p.Off, p.Filesz)
		}
		progs = append(progs, p)
	}
	return le.Uint64(h[24:]), progs, nil
}

// loadELF loads an ELF vmlinux's PT_LOAD segments at their physical
// addresses. With a PVH note it boots through PVH; without, it enters
// e_entry (Linux links vmlinux with the physical address of startup_64
// there) with a zero page whose setup header it makes up, as Firecracker
// does.
func loadELF(mem *memory.Memory, cfg Config, e820 []E820Entry) (Entry, error) {
	elfEntry, progs, err := parseELF(cfg.Kernel)
	if err != nil {
		return Entry{}, err
	}
	kernelEnd := uint64(0)
	pvh, hasPVH := uint64(0), false
	for i, p := range progs {
		switch p.Type {
		case ptLoad:
			end, err := loadSegment(mem, cfg.Kernel, p)
			if err != nil {
				return Entry{}, fmt.Errorf("%w: segment %d: %w", ErrBadImage, i, err)
			}
			kernelEnd = max(kernelEnd, end)
		case ptNote:
			if e, ok := pvhEntry(cfg.Kernel, p); ok {
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
	return Entry{Mode: Mode64, Addr: elfEntry, Param: x86.ZeroPage, InitrdAddr: initrd}, nil
}

// loadSegment reads a PT_LOAD segment to its physical address and zeroes
// the rest of its memory size. It returns the segment's end.
func loadSegment(mem *memory.Memory, image Image, p elfProg) (uint64, error) {
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
func pvhEntry(image Image, p elfProg) (uint64, bool) {
	const maxNotes = 1 << 16 // notes segments are small; do not read a huge one
	if p.Filesz > maxNotes || p.Off > imageSize(image) || p.Filesz > imageSize(image)-p.Off {
		return 0, false
	}
	b := make([]byte, p.Filesz)
	if err := readInto(image, b, int64(p.Off)); err != nil {
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
