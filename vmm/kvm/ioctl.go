package kvm

// ioctl numbers from <linux/kvm.h> (x86-64), checked against the C headers
// of this machine; the struct sizes they encode are pinned by
// TestStructSizesMatchTheKernelABI.
const (
	kvmGetAPIVersion       = 0xae00
	kvmCreateVM            = 0xae01
	kvmCheckExtension      = 0xae03
	kvmGetVCPUMmapSize     = 0xae04
	kvmGetSupportedCPUID   = 0xc008ae05
	kvmCreateVCPU          = 0xae41
	kvmSetUserMemoryRegion = 0x4020ae46
	kvmSetTSSAddr          = 0xae47
	kvmSetIdentityMapAddr  = 0x4008ae48
	kvmCreateIRQChip       = 0xae60
	kvmIRQLine             = 0x4008ae61
	kvmIRQFD               = 0x4020ae76
	kvmCreatePIT2          = 0x4040ae77
	kvmIOEventFD           = 0x4040ae79
	kvmRun                 = 0xae80
	kvmGetRegs             = 0x8090ae81
	kvmSetRegs             = 0x4090ae82
	kvmGetSregs            = 0x8138ae83
	kvmSetSregs            = 0x4138ae84
	kvmSetMSRs             = 0x4008ae89
	kvmSetFPU              = 0x41a0ae8d
	kvmSetCPUID2           = 0x4008ae90
)

// APIVersion is the only KVM API version there has ever been.
const APIVersion = 12

// Capabilities husk needs (KVM_CAP_*).
const (
	capIRQChip       = 0
	capUserMemory    = 3
	capSetTSSAddr    = 4
	capExtCPUID      = 7
	capIRQFD         = 32
	capPIT2          = 33
	capIOEventFD     = 36
	capImmediateExit = 136

	capTSCDeadlineTimer = 72 // optional
)

var requiredCaps = []struct {
	cap  uintptr
	name string
}{
	{capIRQChip, "KVM_CAP_IRQCHIP"},
	{capUserMemory, "KVM_CAP_USER_MEMORY"},
	{capSetTSSAddr, "KVM_CAP_SET_TSS_ADDR"},
	{capExtCPUID, "KVM_CAP_EXT_CPUID"},
	{capIRQFD, "KVM_CAP_IRQFD"},
	{capPIT2, "KVM_CAP_PIT2"},
	{capIOEventFD, "KVM_CAP_IOEVENTFD"},
	{capImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"},
}

// Flags.
const (
	ioeventfdFlagDatamatch = 1
	ioeventfdFlagPIO       = 2
	ioeventfdFlagDeassign  = 4
	irqfdFlagDeassign      = 1
	pitSpeakerDummy        = 1
)
