package acpi

import "encoding/binary"

// FADT layout, revision 6.5 (ACPI 6.5, 5.2.9): the offsets husk fills in.
const (
	fadtSize          = 276
	fadtRevision      = 6
	fadtMinorRevision = 5
	fadtDSDT          = 40
	fadtIAPCBootArch  = 109
	fadtFlags         = 112
	fadtResetReg      = 116
	fadtResetValue    = 128
	fadtMinorVersion  = 131
	fadtXDSDT         = 140
	fadtSleepControl  = 244
	fadtSleepStatus   = 256
	fadtHypervisorID  = 268
)

// FADT flags and IA-PC boot architecture flags.
const (
	flagPowerButton  = 1 << 4  // no fixed power button
	flagSleepButton  = 1 << 5  // no fixed sleep button
	flagResetReg     = 1 << 10 // RESET_REG is supported
	flagHWReducedACP = 1 << 20 // hardware-reduced ACPI: no PM1/GPE blocks, no SCI

	bootArchNoVGA = 1 << 2
	bootArchNoMSI = 1 << 3
	bootArchNoRTC = 1 << 5 // no CMOS RTC: the guest reads time from kvmclock
)

// Generic address structure: system I/O space, one byte wide.
const (
	gasSystemIO = 1
	gasByte     = 1
)

// fadt is a hardware-reduced FADT: no legacy PM blocks, power-off through
// the sleep control register, reboot through the reset register, both
// byte-wide I/O ports. Without the i8042 flag in the boot architecture
// flags Linux does not probe the keyboard controller (reboot=k still
// works); the CMOS RTC is declared absent, the guest's clock is kvmclock.
func fadt(cfg Config, dsdt uint64) []byte {
	b := make([]byte, fadtSize-headerSize)
	le := binary.LittleEndian
	at := func(off int) []byte { return b[off-headerSize:] }
	le.PutUint32(at(fadtDSDT), uint32(dsdt))
	le.PutUint16(at(fadtIAPCBootArch), bootArchNoVGA|bootArchNoMSI|bootArchNoRTC)
	le.PutUint32(at(fadtFlags), flagPowerButton|flagSleepButton|flagResetReg|flagHWReducedACP)
	putGAS(at(fadtResetReg), cfg.ResetPort)
	at(fadtResetValue)[0] = cfg.ResetValue
	at(fadtMinorVersion)[0] = fadtMinorRevision
	le.PutUint64(at(fadtXDSDT), dsdt)
	putGAS(at(fadtSleepControl), cfg.SleepPort)
	putGAS(at(fadtSleepStatus), cfg.SleepPort)
	copy(at(fadtHypervisorID), "HUSK")
	return table("FACP", fadtRevision, "HUSKFADT", b)
}

// putGAS writes a generic address structure for an 8-bit I/O port.
func putGAS(b []byte, port uint16) {
	b[0] = gasSystemIO
	b[1] = 8 // register bit width
	b[2] = 0 // bit offset
	b[3] = gasByte
	binary.LittleEndian.PutUint64(b[4:], uint64(port))
}
