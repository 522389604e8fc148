package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Offsets in a bzImage's real-mode header (Documentation/arch/x86/boot.rst).
// The header is copied verbatim into the zero page at the same offsets.
const (
	hdrSetupSects     = 0x1f1
	hdrBootFlag       = 0x1fe
	hdrJump           = 0x200 // 2-byte jump over the header; byte 0x201 is its length
	hdrMagic          = 0x202
	hdrVersion        = 0x206
	hdrTypeOfLoader   = 0x210
	hdrLoadFlags      = 0x211
	hdrRamdiskImage   = 0x218
	hdrRamdiskSize    = 0x21c
	hdrCmdLinePtr     = 0x228
	hdrInitrdAddrMax  = 0x22c
	hdrKernelAlign    = 0x230
	hdrRelocatable    = 0x234
	hdrXLoadFlags     = 0x236
	hdrCmdlineSize    = 0x238
	hdrPrefAddress    = 0x258
	hdrInitSize       = 0x260
	hdrEnd            = 0x268 // end of the fields this loader reads
	bootFlagValue     = 0xaa55
	magicValue        = 0x5372_6448 // "HdrS"
	minVersion        = 0x020c      // 2.12: xloadflags and the 64-bit entry
	loadedHigh        = 1 << 0      // loadflags: protected-mode code at 1 MiB
	xlfKernel64       = 1 << 0      // xloadflags: has the 64-bit entry point
	entry64Offset     = 0x200       // startup_64, from the protected-mode start
	defaultSetupSects = 4
	loaderUndefined   = 0xff // type_of_loader: a loader without an assigned id
)

// Errors about a kernel image.
var (
	ErrNotBzImage = errors.New("not a bzImage")
	ErrBadImage   = errors.New("malformed kernel image")
	ErrProtocol   = errors.New("unsupported boot protocol")
)

// BzImage is a parsed bzImage: its setup header and protected-mode code.
type BzImage struct {
	Version       uint16            // boot protocol version, 0x020c or later
	Header        []byte            // the setup header, [0x1f1, end of header), for the zero page
	Kernel        *io.SectionReader // the protected-mode code, loaded at KernelAddr
	InitrdAddrMax uint32            // highest address the initrd may occupy
	CmdlineSize   uint32            // longest command line, without its NUL
	InitSize      uint32            // bytes the kernel needs from its load address to boot
	KernelAlign   uint32
	Relocatable   bool
}

// ParseBzImage parses a bzImage and checks that it can be booted through
// the 64-bit boot protocol. It reads only the first page of r (the setup
// header); the returned Kernel is a section of r.
func ParseBzImage(r Image) (*BzImage, error) {
	size := r.Size()
	if size < hdrEnd {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %#x-byte setup header", ErrNotBzImage, size, hdrEnd)
	}
	b := make([]byte, min(size, zeroPageSize))
	if err := readInto(r, b, 0); err != nil {
		return nil, fmt.Errorf("reading the setup header: %w", err)
	}
	le := binary.LittleEndian
	if v := le.Uint16(b[hdrBootFlag:]); v != bootFlagValue {
		return nil, fmt.Errorf("%w: boot flag %#x, want %#x", ErrNotBzImage, v, bootFlagValue)
	}
	if v := le.Uint32(b[hdrMagic:]); v != magicValue {
		return nil, fmt.Errorf("%w: header magic %#x, want \"HdrS\"", ErrNotBzImage, v)
	}
	img := &BzImage{
		Version:       le.Uint16(b[hdrVersion:]),
		InitrdAddrMax: le.Uint32(b[hdrInitrdAddrMax:]),
		CmdlineSize:   le.Uint32(b[hdrCmdlineSize:]),
		InitSize:      le.Uint32(b[hdrInitSize:]),
		KernelAlign:   le.Uint32(b[hdrKernelAlign:]),
		Relocatable:   b[hdrRelocatable] != 0,
	}
	if img.Version < minVersion {
		return nil, fmt.Errorf("%w: version %d.%02d, want 2.12 or later", ErrProtocol, img.Version>>8, img.Version&0xff)
	}
	if b[hdrLoadFlags]&loadedHigh == 0 {
		return nil, fmt.Errorf("%w: loadflags %#x lack LOADED_HIGH (a zImage, not a bzImage)", ErrProtocol, b[hdrLoadFlags])
	}
	if xl := le.Uint16(b[hdrXLoadFlags:]); xl&xlfKernel64 == 0 {
		return nil, fmt.Errorf("%w: xloadflags %#x lack XLF_KERNEL_64 (no 64-bit entry point)", ErrProtocol, xl)
	}
	// The header ends where the jump at 0x200 lands.
	end := hdrJump + 2 + int(b[hdrJump+1])
	if end < hdrEnd || end > len(b) || end > zeroPageSize {
		return nil, fmt.Errorf("%w: setup header ends at %#x (jump byte %#x), want [%#x, %#x] inside the image", ErrBadImage, end, b[hdrJump+1], hdrEnd, zeroPageSize)
	}
	img.Header = b[hdrSetupSects:end:end]

	sects := int(b[hdrSetupSects])
	if sects == 0 {
		sects = defaultSetupSects
	}
	start := int64(sects+1) * 512
	if start >= size {
		return nil, fmt.Errorf("%w: %d setup sectors leave no protected-mode code in %d bytes", ErrBadImage, sects, size)
	}
	img.Kernel = io.NewSectionReader(r, start, size-start)
	if n := img.Kernel.Size(); n <= entry64Offset {
		return nil, fmt.Errorf("%w: %d bytes of protected-mode code, the 64-bit entry is at %#x", ErrBadImage, n, entry64Offset)
	}
	if n := img.Kernel.Size(); int64(img.InitSize) < n {
		return nil, fmt.Errorf("%w: init_size %#x is smaller than the %#x-byte kernel", ErrBadImage, img.InitSize, n)
	}
	if img.CmdlineSize == 0 {
		return nil, fmt.Errorf("%w: cmdline_size is 0", ErrBadImage)
	}
	return img, nil
}
