package aml

import "encoding/binary"

// Resource descriptors (ACPI 6.5, 6.4): the contents of a _CRS buffer.
const (
	ioTag            = 0x47 // small item 0x08, 7 bytes
	memory32FixedTag = 0x86
	extendedIRQTag   = 0x89
	endTag           = 0x79
)

// ResourceTemplate encodes ResourceTemplate() { descriptors }: a buffer of
// the descriptors and an end tag (checksum 0, which means "none").
func ResourceTemplate(descriptors ...[]byte) []byte {
	var b []byte
	for _, d := range descriptors {
		b = append(b, d...)
	}
	return Buffer(append(b, endTag, 0))
}

// IO encodes IO(Decode16, min, max, alignment, length): a range of I/O
// ports with 16-bit decoding.
func IO(min, max uint16, alignment, length uint8) []byte {
	b := []byte{ioTag, 1}
	b = binary.LittleEndian.AppendUint16(b, min)
	b = binary.LittleEndian.AppendUint16(b, max)
	return append(b, alignment, length)
}

// Memory32Fixed encodes Memory32Fixed(ReadWrite or ReadOnly, base, size).
func Memory32Fixed(readWrite bool, base, size uint32) []byte {
	b := []byte{memory32FixedTag, 9, 0, 0}
	if readWrite {
		b[3] = 1
	}
	b = binary.LittleEndian.AppendUint32(b, base)
	return binary.LittleEndian.AppendUint32(b, size)
}

// InterruptFlags are an extended interrupt descriptor's flags.
type InterruptFlags struct {
	Edge      bool // edge-triggered rather than level-triggered
	ActiveLow bool
	Shared    bool
}

// Interrupt encodes Interrupt(ResourceConsumer, ...) { gsis }: an extended
// interrupt descriptor for one or more global system interrupts.
func Interrupt(f InterruptFlags, gsis ...uint32) []byte {
	flags := byte(1) // ResourceConsumer
	if f.Edge {
		flags |= 1 << 1
	}
	if f.ActiveLow {
		flags |= 1 << 2
	}
	if f.Shared {
		flags |= 1 << 3
	}
	b := []byte{extendedIRQTag}
	b = binary.LittleEndian.AppendUint16(b, uint16(2+4*len(gsis)))
	b = append(b, flags, byte(len(gsis)))
	for _, g := range gsis {
		b = binary.LittleEndian.AppendUint32(b, g)
	}
	return b
}
