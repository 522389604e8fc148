package boot

import (
	"encoding/binary"
	"fmt"
)

// Offsets in struct boot_params, the zero page (Documentation/arch/x86/
// zero-page.rst), other than the setup header copied in at hdrSetupSects.
const (
	zeroPageSize      = 4096
	zpACPIRSDPAddr    = 0x070
	zpExtRamdiskImage = 0x0c0
	zpExtRamdiskSize  = 0x0c4
	zpExtCmdLinePtr   = 0x0c8
	zpE820Entries     = 0x1e8
	zpE820Table       = 0x2d0
	e820EntrySize     = 20
	maxE820Entries    = 128
)

// zeroPage is what the zero page says about the machine.
type zeroPage struct {
	header      []byte // the kernel's setup header, copied verbatim
	cmdlineAddr uint64
	initrdAddr  uint64
	initrdSize  uint64
	rsdp        uint64 // 0: let the kernel scan the BIOS area for it
	e820        []E820Entry
}

// encode returns the zero page's 4096 bytes: the kernel's own header with
// the loader's fields filled in, the e820 map and the RSDP address. Every
// field not named here is zero, which is what the kernel expects from a
// loader that knows nothing of them (the sentinel at 0x1ef included).
func (z *zeroPage) encode() ([]byte, error) {
	if len(z.e820) > maxE820Entries {
		return nil, fmt.Errorf("%d e820 entries, at most %d", len(z.e820), maxE820Entries)
	}
	if len(z.header) > zeroPageSize-hdrSetupSects {
		return nil, fmt.Errorf("%w: %d-byte setup header", ErrBadImage, len(z.header))
	}
	le := binary.LittleEndian
	p := make([]byte, zeroPageSize)
	copy(p[hdrSetupSects:], z.header)
	p[hdrTypeOfLoader] = loaderUndefined
	le.PutUint32(p[hdrCmdLinePtr:], uint32(z.cmdlineAddr))
	le.PutUint32(p[zpExtCmdLinePtr:], uint32(z.cmdlineAddr>>32))
	le.PutUint32(p[hdrRamdiskImage:], uint32(z.initrdAddr))
	le.PutUint32(p[zpExtRamdiskImage:], uint32(z.initrdAddr>>32))
	le.PutUint32(p[hdrRamdiskSize:], uint32(z.initrdSize))
	le.PutUint32(p[zpExtRamdiskSize:], uint32(z.initrdSize>>32))
	le.PutUint64(p[zpACPIRSDPAddr:], z.rsdp)
	p[zpE820Entries] = byte(len(z.e820))
	for i, e := range z.e820 {
		b := p[zpE820Table+e820EntrySize*i:]
		le.PutUint64(b, e.Addr)
		le.PutUint64(b[8:], e.Size)
		le.PutUint32(b[16:], e.Type)
	}
	return p, nil
}
