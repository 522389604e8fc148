// Package acpi builds the ACPI tables that describe a husk VM to a stock
// kernel (ACPI 6.5): an RSDP pointing at an XSDT that lists a hardware-
// reduced FADT and a MADT, and a DSDT with one LNRO0005 device per
// virtio-mmio device (Linux's virtio_mmio matches that id), the \_S5 sleep
// object that lets the guest power off through the FADT's sleep control
// register, and nothing else.
//
// Build lays the tables out for a given guest physical address; the caller
// writes the result into guest memory there.
package acpi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Identification written into every table header.
const (
	oemID           = "HUSK  "
	oemRevision     = 1
	creatorID       = "HUSK"
	creatorRevision = 1
	headerSize      = 36
	rsdpSize        = 36
	tableAlign      = 8
)

// ErrConfig reports a Config the tables cannot describe.
var ErrConfig = errors.New("invalid ACPI config")

// MMIODevice is one virtio-mmio device: its register window and the GSI of
// its interrupt (edge-triggered, active high, through the IOAPIC).
type MMIODevice struct {
	Base uint64
	Size uint64
	GSI  uint32
}

// Config describes the machine.
type Config struct {
	VCPUs int // one local APIC each, APIC ids 0..VCPUs-1
	// IOAPICBase is the IOAPIC's MMIO address; its GSIs start at 0.
	IOAPICBase uint32
	// SleepPort is the I/O port of the sleep control and status registers
	// (8 bits each, the same port): the guest powers off by writing
	// SleepTypeS5<<2 | SLP_EN there.
	SleepPort uint16
	// ResetPort is the reset register's I/O port; the guest reboots by
	// writing ResetValue to it.
	ResetPort  uint16
	ResetValue uint8
	// Serial lists the 16550 UARTs, so that the guest maps their
	// interrupts (a hardware-reduced platform has no legacy ISA IRQs).
	Serial  []SerialPort
	Devices []MMIODevice
}

// SerialPort is a PC serial port: 8 I/O ports and an edge-triggered GSI.
type SerialPort struct {
	Base uint16
	GSI  uint32
}

// Build returns the tables laid out from guest physical address base, RSDP
// first, each table 8-byte aligned.
func Build(base uint64, cfg Config) ([]byte, error) {
	if cfg.VCPUs < 1 || cfg.VCPUs > 255 {
		return nil, fmt.Errorf("%w: %d vCPUs, want 1..255", ErrConfig, cfg.VCPUs)
	}
	dsdt, err := dsdt(cfg)
	if err != nil {
		return nil, err
	}
	// Layout: RSDP, XSDT (two entries), FADT, MADT, DSDT.
	l := layout{base: base}
	rsdpAt := l.place(rsdpSize)
	xsdtAt := l.place(headerSize + 2*8)
	fadtAt := l.place(fadtSize)
	madt := madt(cfg)
	madtAt := l.place(uint64(len(madt)))
	dsdtAt := l.place(uint64(len(dsdt)))

	out := make([]byte, l.next-base)
	put := func(at uint64, b []byte) { copy(out[at-base:], b) }
	put(rsdpAt, rsdp(xsdtAt))
	put(xsdtAt, table("XSDT", 1, "HUSKXSDT", binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, fadtAt), madtAt)))
	put(fadtAt, fadt(cfg, dsdtAt))
	put(madtAt, madt)
	put(dsdtAt, dsdt)
	return out, nil
}

// layout hands out 8-byte-aligned addresses.
type layout struct{ base, next uint64 }

func (l *layout) place(size uint64) uint64 {
	if l.next == 0 {
		l.next = l.base
	}
	at := (l.next + tableAlign - 1) &^ (tableAlign - 1)
	l.next = at + size
	return at
}

// table wraps body in a standard header with a valid checksum.
func table(sig string, revision byte, tableID string, body []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(body))
	copy(b[0:4], sig)
	binary.LittleEndian.PutUint32(b[4:], uint32(headerSize+len(body)))
	b[8] = revision
	copy(b[10:16], oemID)
	copy(b[16:24], tableID)
	binary.LittleEndian.PutUint32(b[24:], oemRevision)
	copy(b[28:32], creatorID)
	binary.LittleEndian.PutUint32(b[32:], creatorRevision)
	b = append(b, body...)
	b[9] = checksum(b)
	return b
}

// checksum returns the byte that makes b sum to zero (mod 256); b's own
// checksum byte must be zero when it is computed.
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// rsdp is the ACPI 2.0+ root pointer: revision 2, no RSDT, the XSDT.
func rsdp(xsdt uint64) []byte {
	b := make([]byte, rsdpSize)
	copy(b, "RSD PTR ")
	copy(b[9:15], oemID)
	b[15] = 2 // revision
	binary.LittleEndian.PutUint32(b[20:], rsdpSize)
	binary.LittleEndian.PutUint64(b[24:], xsdt)
	b[8] = checksum(b[:20])
	b[32] = checksum(b)
	return b
}
