// Package power holds the two ways a guest ends a husk VM: the ACPI sleep
// control and reset registers of a hardware-reduced platform (what Linux's
// poweroff and, by default, reboot use once the FADT declares them) and
// the i8042 keyboard controller's reset line (reboot=k, and Linux's
// fallback). Each reports the guest's request as an error from its bus
// write, which ends the vCPU's run.
package power

import "errors"

var (
	// ErrPowerOff reports that the guest asked to power off.
	ErrPowerOff = errors.New("guest powered off")
	// ErrReboot reports that the guest asked to reboot. husk does not
	// reboot a VM in place; the VMM stops, as Firecracker's does.
	ErrReboot = errors.New("guest asked for a reboot")
)

// Sleep control register bits (ACPI 6.5, 4.8.3.7): SLP_TYP in bits 2-4,
// SLP_EN in bit 5.
const (
	sleepTypeShift = 2
	sleepTypeMask  = 0x7 << sleepTypeShift
	sleepEnable    = 1 << 5
)

// SleepControl is the hardware-reduced sleep control and status register,
// one byte wide. A write with SLP_EN and the SLP_TYP of S5 is a power-off;
// other writes (Linux first clears WAK_STS, bit 7) are ignored. It reads 0:
// no wake event.
type SleepControl struct {
	S5 byte // the SLP_TYP value the DSDT's \_S5 object gives
}

// Read implements bus.Device.
func (s *SleepControl) Read(offset uint64, data []byte) { clear(data) }

// Write implements bus.Device.
func (s *SleepControl) Write(offset uint64, data []byte) error {
	if len(data) != 1 {
		return nil
	}
	v := data[0]
	if v&sleepEnable != 0 && (v&sleepTypeMask)>>sleepTypeShift == s.S5 {
		return ErrPowerOff
	}
	return nil
}

// ResetRegister is the FADT's reset register: writing Value reboots.
type ResetRegister struct {
	Value byte
}

// Read implements bus.Device.
func (r *ResetRegister) Read(offset uint64, data []byte) { clear(data) }

// Write implements bus.Device.
func (r *ResetRegister) Write(offset uint64, data []byte) error {
	if len(data) == 1 && data[0] == r.Value {
		return ErrReboot
	}
	return nil
}

// The i8042's ports: data at 0x60, status/command at 0x64.
const (
	I8042Base      = 0x60
	I8042Size      = 5
	i8042Command   = 4
	i8042ResetCPU  = 0xfe // pulse the reset line
	i8042StatusIdl = 0    // output buffer empty, input buffer empty
)

// I8042 is just enough of the keyboard controller for a reboot: status
// reads say both buffers are empty (so Linux's kb_wait returns at once),
// and command 0xfe reboots. Every other access reads 0 and is ignored.
type I8042 struct{}

// Read implements bus.Device.
func (I8042) Read(offset uint64, data []byte) { clear(data) }

// Write implements bus.Device.
func (I8042) Write(offset uint64, data []byte) error {
	if offset == i8042Command && len(data) == 1 && data[0] == i8042ResetCPU {
		return ErrReboot
	}
	return nil
}
