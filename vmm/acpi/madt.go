package acpi

import "encoding/binary"

// MADT (ACPI 6.5, 5.2.12) entry types and values.
const (
	madtRevision    = 6
	localAPICAddr   = 0xfee0_0000
	typeLocalAPIC   = 0
	typeIOAPIC      = 1
	localAPICLen    = 8
	ioAPICLen       = 12
	localAPICEnable = 1
)

// madt lists one enabled local APIC per vCPU (processor UID and APIC id
// equal to the vCPU id, as package kvm's CPUID normalisation says) and the
// IOAPIC with GSI base 0. No PCAT_COMPAT flag: the guest does not use the
// 8259s, and no interrupt source overrides: ISA IRQs map to GSIs 1:1.
func madt(cfg Config) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, localAPICAddr)
	b = le.AppendUint32(b, 0) // flags
	for i := range cfg.VCPUs {
		b = append(b, typeLocalAPIC, localAPICLen, byte(i), byte(i))
		b = le.AppendUint32(b, localAPICEnable)
	}
	b = append(b, typeIOAPIC, ioAPICLen, 0, 0) // IOAPIC id 0, as KVM's starts
	b = le.AppendUint32(b, cfg.IOAPICBase)
	b = le.AppendUint32(b, 0) // GSI base
	return table("APIC", madtRevision, "HUSKMADT", b)
}
