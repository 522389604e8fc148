package kvm

// Regs is struct kvm_regs: the general-purpose registers.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is struct kvm_segment: a segment register's hidden state.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	_        uint8
}

// DTable is struct kvm_dtable: a descriptor-table register (GDTR, IDTR).
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs is struct kvm_sregs: the system registers.
type Sregs struct {
	CS, DS, ES, FS, GS, SS  Segment
	TR, LDT                 Segment
	GDT, IDT                DTable
	CR0, CR2, CR3, CR4, CR8 uint64
	EFER                    uint64
	APICBase                uint64
	InterruptBitmap         [4]uint64
}

// FPU is struct kvm_fpu: x87 and SSE state.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// CPUIDEntry is struct kvm_cpuid_entry2: one CPUID leaf (and sub-leaf).
type CPUIDEntry struct {
	Function           uint32
	Index              uint32
	Flags              uint32
	EAX, EBX, ECX, EDX uint32
	_                  [3]uint32
}

// CPUIDFlagSignificantIndex marks a leaf whose result depends on ECX.
const CPUIDFlagSignificantIndex = 1

// MSREntry is struct kvm_msr_entry: a model-specific register and its value.
type MSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// maxCPUIDEntries is KVM_MAX_CPUID_ENTRIES; maxMSRs bounds one KVM_SET_MSRS.
const (
	maxCPUIDEntries = 256
	maxMSRs         = 64
)

// cpuid2 is struct kvm_cpuid2 with room for every entry KVM can return.
type cpuid2 struct {
	nent    uint32
	_       uint32
	entries [maxCPUIDEntries]CPUIDEntry
}

// msrs is struct kvm_msrs with a fixed array of entries.
type msrs struct {
	nmsrs   uint32
	_       uint32
	entries [maxMSRs]MSREntry
}

type userspaceMemoryRegion struct {
	slot          uint32
	_             uint32 // flags: no dirty logging, no read-only slots yet
	guestPhysAddr uint64
	memorySize    uint64
	userspaceAddr uint64
}

type pitConfig struct {
	flags uint32
	_     [15]uint32
}

type ioeventfd struct {
	datamatch uint64
	addr      uint64
	len       uint32
	fd        int32
	flags     uint32
	_         [36]uint8
}

type irqfd struct {
	fd    uint32
	gsi   uint32
	flags uint32
	_     uint32 // resamplefd: edge-triggered only for now
	_     [16]uint8
}

type irqLevel struct {
	irq   uint32
	level uint32
}
