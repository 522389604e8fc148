package vmm

import (
	"github.com/huskrt/husk/vmm/acpi"
	"github.com/huskrt/husk/vmm/devices/serial"
)

// The platform every husk VM has: a PC without a PCI bus, described to the
// guest by ACPI (hardware-reduced) and nothing else.
//
//	ports:  0x60/0x64 i8042 (reset only), 0x3f8 COM1 (GSI 4),
//	        0x600 ACPI sleep control/status, 0x601 ACPI reset
//	MMIO:   0xc0000000 boot timer (write 123: "the guest got here")
//	        0xd0000000 + 4 KiB × n  virtio-mmio devices (GSI 5 + n)
//	        0xfec00000 IOAPIC, 0xfee00000 local APICs (in KVM)
const (
	sleepPort  = 0x600
	resetPort  = 0x601
	resetValue = 1
	ioapicBase = 0xfec0_0000

	// BootTimerAddr is the boot timer's register: a guest marks a moment
	// with `devmem 0xc0000000 8 123` (see package boottimer).
	BootTimerAddr = 0xc000_0000

	virtioMMIOBase = 0xd000_0000
	firstVirtioGSI = 5
	ioapicPins     = 24
	// MaxVirtioDevices is how many virtio devices fit the IOAPIC's pins
	// after the legacy ones, one edge-triggered GSI each.
	MaxVirtioDevices = ioapicPins - firstVirtioGSI
)

func acpiConfig(vcpus int, devices []acpi.MMIODevice) acpi.Config {
	return acpi.Config{
		VCPUs:      vcpus,
		IOAPICBase: ioapicBase,
		SleepPort:  sleepPort,
		ResetPort:  resetPort,
		ResetValue: resetValue,
		Serial:     []acpi.SerialPort{{Base: serial.COM1Base, GSI: serial.COM1IRQ}},
		Devices:    devices,
	}
}
