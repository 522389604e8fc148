package acpi

import (
	"fmt"

	"github.com/huskrt/husk/vmm/acpi/aml"
)

// VirtioMMIOHID is the ACPI hardware id of a virtio-mmio device, the one
// Linux's virtio_mmio driver matches.
const VirtioMMIOHID = "LNRO0005"

// SleepTypeS5 is the SLP_TYP the DSDT's \_S5 gives for soft-off: the guest
// writes SLP_TYP<<2 | SLP_EN (bit 5) to the sleep control register.
const SleepTypeS5 = 5

const (
	dsdtRevision = 2   // 64-bit AML integers
	maxDevices   = 256 // device names are VR00-VRFF
)

// SerialHID is the PNP id of a 16550A-compatible UART, which Linux's
// 8250_pnp driver claims.
const SerialHID = "PNP0501"

// dsdt returns the DSDT: \_S5 and, under \_SB, one device per serial port
// (ports and interrupt as _CRS) and one per virtio-mmio window (registers
// and interrupt).
func dsdt(cfg Config) ([]byte, error) {
	if len(cfg.Devices) > maxDevices || len(cfg.Serial) > 4 {
		return nil, fmt.Errorf("%w: %d virtio-mmio devices (at most %d), %d serial ports (at most 4)", ErrConfig, len(cfg.Devices), maxDevices, len(cfg.Serial))
	}
	var devices [][]byte
	for i, s := range cfg.Serial {
		devices = append(devices, aml.Device(fmt.Sprintf("COM%d", i+1),
			aml.Name("_HID", aml.EISAID(SerialHID)),
			aml.Name("_UID", aml.Integer(uint64(i))),
			aml.Name("_CRS", aml.ResourceTemplate(
				aml.IO(s.Base, s.Base, 0, 8),
				aml.Interrupt(aml.InterruptFlags{Edge: true}, s.GSI),
			)),
		))
	}
	for i, d := range cfg.Devices {
		if d.Base > 0xffff_ffff || d.Size == 0 || d.Size > 0xffff_ffff || d.Base+d.Size > 1<<32 {
			return nil, fmt.Errorf("%w: virtio-mmio window [%#x, +%#x) is not below 4 GiB", ErrConfig, d.Base, d.Size)
		}
		devices = append(devices, aml.Device(fmt.Sprintf("VR%02X", i),
			aml.Name("_HID", aml.String(VirtioMMIOHID)),
			aml.Name("_UID", aml.Integer(uint64(i))),
			aml.Name("_CRS", aml.ResourceTemplate(
				aml.Memory32Fixed(true, uint32(d.Base), uint32(d.Size)),
				aml.Interrupt(aml.InterruptFlags{Edge: true}, d.GSI),
			)),
		))
	}
	body := aml.Name("_S5", aml.Package(aml.Integer(SleepTypeS5), aml.Integer(0)))
	body = append(body, aml.Scope("_SB", devices...)...)
	return table("DSDT", dsdtRevision, "HUSKDSDT", body), nil
}
