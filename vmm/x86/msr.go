package x86

import "github.com/huskrt/husk/vmm/kvm"

// MSR indexes (Intel SDM vol. 4).
const (
	msrIA32SysenterCS  = 0x174
	msrIA32SysenterESP = 0x175
	msrIA32SysenterEIP = 0x176
	msrIA32TSC         = 0x10
	msrIA32MiscEnable  = 0x1a0
	msrMTRRDefType     = 0x2ff
	msrSTAR            = 0xc000_0081
	msrLSTAR           = 0xc000_0082
	msrCSTAR           = 0xc000_0083
	msrSyscallMask     = 0xc000_0084
	msrKernelGSBase    = 0xc000_0102

	miscEnableFastString = 1 << 0
	mtrrEnable           = 1 << 11
	mtrrTypeWriteBack    = 6
)

// BootMSRs returns the MSRs a vCPU starts with: the SYSENTER/SYSCALL
// registers and the TSC zeroed, fast strings on, and MTRRs enabled with
// write-back as the default memory type (without it, a guest that trusts
// the MTRRs would run uncached).
func BootMSRs() []kvm.MSREntry {
	return []kvm.MSREntry{
		{Index: msrIA32SysenterCS},
		{Index: msrIA32SysenterESP},
		{Index: msrIA32SysenterEIP},
		{Index: msrSTAR},
		{Index: msrCSTAR},
		{Index: msrKernelGSBase},
		{Index: msrSyscallMask},
		{Index: msrLSTAR},
		{Index: msrIA32TSC},
		{Index: msrIA32MiscEnable, Data: miscEnableFastString},
		{Index: msrMTRRDefType, Data: mtrrEnable | mtrrTypeWriteBack},
	}
}

// BootFPU returns the x87/SSE state of a freshly reset CPU as Linux expects
// it: x87 control word 0x37f (all exceptions masked, extended precision)
// and MXCSR 0x1f80 (all SSE exceptions masked).
func BootFPU() kvm.FPU {
	return kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}
}
