package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/x86"
)

// Image is a kernel or initrd as the loader reads it: its bytes by
// offset, and its size. The loader reads each part straight into guest
// memory where it goes (a section of an *os.File: one pread, no copy in
// the VMM's own memory); it reads nothing else from it but the headers.
// *bytes.Reader and *io.SectionReader are Images.
type Image interface {
	io.ReaderAt
	Size() int64
}

// Config is what to boot.
type Config struct {
	Kernel  Image // a bzImage, or an ELF vmlinux
	Initrd  Image // optional (nil)
	Cmdline string
	// RSDP is the guest physical address of the ACPI root pointer, handed
	// to the kernel in the zero page or PVH start info; 0 for none.
	RSDP uint64
}

// Mode is the state a vCPU enters the kernel in.
type Mode int

const (
	// Mode64 is the Linux 64-bit boot protocol: long mode, identity-mapped
	// page tables, RSI at the zero page (package x86's BootLongMode state).
	Mode64 Mode = iota
	// ModePVH is the PVH entry: 32-bit protected mode with paging off, EBX
	// at the hvm_start_info.
	ModePVH
)

func (m Mode) String() string {
	if m == ModePVH {
		return "PVH"
	}
	return "64-bit"
}

// Entry says where and how the boot vCPU starts.
type Entry struct {
	Mode  Mode
	Addr  uint64 // first instruction
	Param uint64 // the zero page (Mode64) or hvm_start_info (ModePVH)

	InitrdAddr uint64 // where the initrd was placed, 0 without one
}

// Load writes the kernel, command line, initrd and zero page (or PVH start
// info) into mem, which must be fresh (zeroed), and returns the entry. It
// recognises a bzImage by its header and an ELF vmlinux by its magic.
func Load(mem *memory.Memory, cfg Config) (Entry, error) {
	if cfg.Kernel == nil {
		return Entry{}, fmt.Errorf("%w: no kernel", ErrNotBzImage)
	}
	e820, err := E820(mem)
	if err != nil {
		return Entry{}, err
	}
	var magic [4]byte
	if n, _ := cfg.Kernel.ReadAt(magic[:], 0); n == len(magic) && bytes.Equal(magic[:], []byte("\x7fELF")) {
		return loadELF(mem, cfg, e820)
	}
	img, err := ParseBzImage(cfg.Kernel)
	if err != nil {
		return Entry{}, err
	}
	return loadBzImage(mem, cfg, img, e820)
}

// loadBzImage places the protected-mode code at KernelAddr. The
// decompressor moves itself to max(pref_address, its aligned load address)
// and needs init_size bytes from there, so the initrd goes above that.
func loadBzImage(mem *memory.Memory, cfg Config, img *BzImage, e820 []E820Entry) (Entry, error) {
	dst, err := mem.Slice(KernelAddr, uint64(img.Kernel.Size()))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: a %d-byte kernel at %#x: %w", ErrTooSmall, img.Kernel.Size(), KernelAddr, err)
	}
	if err := readInto(img.Kernel, dst, 0); err != nil {
		return Entry{}, fmt.Errorf("reading the kernel: %w", err)
	}
	pref := binary.LittleEndian.Uint64(img.Header[hdrPrefAddress-hdrSetupSects:])
	kernelEnd := max(pref, KernelAddr) + uint64(img.InitSize)
	if err := writeCmdline(mem, cfg.Cmdline, uint64(img.CmdlineSize)); err != nil {
		return Entry{}, err
	}
	initrd, err := placeInitrd(mem, cfg.Initrd, kernelEnd, uint64(img.InitrdAddrMax))
	if err != nil {
		return Entry{}, err
	}
	z := zeroPage{
		header:      img.Header,
		cmdlineAddr: CmdlineAddr,
		initrdAddr:  initrd,
		initrdSize:  imageSize(cfg.Initrd),
		rsdp:        cfg.RSDP,
		e820:        e820,
	}
	if err := writeZeroPage(mem, &z); err != nil {
		return Entry{}, err
	}
	return Entry{Mode: Mode64, Addr: KernelAddr + entry64Offset, Param: x86.ZeroPage, InitrdAddr: initrd}, nil
}

func writeZeroPage(mem *memory.Memory, z *zeroPage) error {
	p, err := z.encode()
	if err != nil {
		return err
	}
	if err := mem.WriteAt(p, x86.ZeroPage); err != nil {
		return fmt.Errorf("write zero page: %w", err)
	}
	return nil
}

// writeCmdline writes the NUL-terminated command line at CmdlineAddr.
// limit is the longest command line the kernel takes (without the NUL).
func writeCmdline(mem *memory.Memory, cmdline string, limit uint64) error {
	limit = min(limit, MaxCmdline-1)
	if uint64(len(cmdline)) > limit {
		return fmt.Errorf("command line of %d bytes, the kernel takes at most %d", len(cmdline), limit)
	}
	if bytes.IndexByte([]byte(cmdline), 0) >= 0 {
		return fmt.Errorf("command line contains a NUL byte")
	}
	if err := mem.WriteAt(append([]byte(cmdline), 0), CmdlineAddr); err != nil {
		return fmt.Errorf("write command line: %w", err)
	}
	return nil
}

// placeInitrd reads initrd into guest memory as high as it can go:
// page-aligned, ending at or below addrMax+1 and the end of RAM below the
// MMIO hole, and starting at or above floor (the end of what the kernel
// needs). It returns the address, or 0 for no initrd or an empty one.
func placeInitrd(mem *memory.Memory, initrd Image, floor, addrMax uint64) (uint64, error) {
	size := imageSize(initrd)
	if size == 0 {
		return 0, nil
	}
	top := min(addrMax+1, mem.Regions()[0].End())
	if size > top || (top-size)&^(memory.PageSize-1) < floor {
		return 0, fmt.Errorf("%w: a %d-byte initrd does not fit between %#x and %#x", ErrTooSmall, size, floor, top)
	}
	addr := (top - size) &^ (memory.PageSize - 1)
	dst, err := mem.Slice(addr, size)
	if err != nil {
		return 0, fmt.Errorf("initrd at %#x: %w", addr, err)
	}
	if err := readInto(initrd, dst, 0); err != nil {
		return 0, fmt.Errorf("reading the initrd: %w", err)
	}
	return addr, nil
}

// imageSize is i's size in bytes, 0 for none.
func imageSize(i Image) uint64 {
	if i == nil {
		return 0
	}
	return uint64(max(i.Size(), 0))
}

// readInto fills dst, guest memory, with r's bytes from off: the read
// goes straight there, through no buffer of the VMM's own.
func readInto(r io.ReaderAt, dst []byte, off int64) error {
	n, err := r.ReadAt(dst, off)
	if n == len(dst) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%d of %d bytes at %#x: %w", n, len(dst), off, err)
}
