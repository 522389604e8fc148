package kvm

import "math/bits"

// CPUID leaves and bits NormalizeCPUID edits (Intel SDM vol. 2A, AMD APM
// vol. 3).
const (
	leafFeatures      = 0x1
	leafCacheParams   = 0x4
	leafPerfMon       = 0xa
	leafTopology      = 0xb
	leafTopologyV2    = 0x1f
	leafExtAddrSizes  = 0x8000_0008
	leafExtAPICID     = 0x8000_001e
	ecxHypervisor     = 1 << 31
	ecxTSCDeadline    = 1 << 24
	edxHTT            = 1 << 28
	topologyLevelSMT  = 1
	topologyLevelCore = 2
)

// NormalizeCPUID returns the CPUID table for vCPU id of a machine with
// count vCPUs, from what KVM supports on this host (System.SupportedCPUID):
//
//   - the initial APIC id (leaf 0x1 EBX, leaf 0xb EDX, AMD leaf 0x8000001e)
//     is the vCPU id, so the guest's view matches the in-kernel local APICs;
//   - the hypervisor bit (leaf 0x1 ECX bit 31) is set;
//   - the topology is one socket of count cores with one thread each:
//     leaf 0x1's logical count, leaf 0x4's cores per package, leaf 0xb's two
//     levels (leaf 0x1f is dropped so the guest reads 0xb), and AMD leaf
//     0x80000008's core count agree with that;
//   - the architectural PMU (leaf 0xa) is hidden: husk exposes no vPMU.
//
// The input is not modified.
func NormalizeCPUID(supported []CPUIDEntry, id, count int) []CPUIDEntry {
	apicID := uint32(id)
	n := uint32(max(count, 1))
	shift := uint32(bits.Len32(n - 1)) // APIC id bits for the core level
	out := make([]CPUIDEntry, 0, len(supported)+3)
	hasTopology := false
	for _, e := range supported {
		switch e.Function {
		case leafFeatures:
			e.EBX = e.EBX&0x0000_ffff | apicID<<24 | min(n, 255)<<16
			e.ECX |= ecxHypervisor
			if n > 1 {
				e.EDX |= edxHTT
			} else {
				e.EDX &^= edxHTT
			}
		case leafCacheParams:
			// EAX[31:26] = cores per package - 1; EAX[25:14] = logical
			// processors sharing this cache - 1: only the L3 is shared.
			sharing := uint32(0)
			if (e.EAX>>5)&7 == 3 {
				sharing = n - 1
			}
			e.EAX = e.EAX&0x3fff | (min(n-1, 63) << 26) | (min(sharing, 0xfff) << 14)
		case leafPerfMon:
			e.EAX, e.EBX, e.ECX, e.EDX = 0, 0, 0, 0
		case leafTopology:
			hasTopology = true
			continue // rebuilt below
		case leafTopologyV2:
			continue
		case leafExtAddrSizes:
			// ECX[15:12] = APIC id bits, ECX[7:0] = cores - 1.
			e.ECX = e.ECX&^0xf0ff | shift<<12 | min(n-1, 255)
		case leafExtAPICID:
			e.EAX = apicID
			e.EBX &^= 0xff00 // one thread per core
			e.EBX = e.EBX&^0xff | apicID
			e.ECX &^= 0x7ff // node 0
		}
		out = append(out, e)
	}
	if hasTopology {
		out = append(out,
			CPUIDEntry{Function: leafTopology, Index: 0, Flags: CPUIDFlagSignificantIndex,
				EAX: 0, EBX: 1, ECX: topologyLevelSMT << 8, EDX: apicID}, // level number 0
			CPUIDEntry{Function: leafTopology, Index: 1, Flags: CPUIDFlagSignificantIndex,
				EAX: shift, EBX: n, ECX: topologyLevelCore<<8 | 1, EDX: apicID},
			CPUIDEntry{Function: leafTopology, Index: 2, Flags: CPUIDFlagSignificantIndex,
				ECX: 2, EDX: apicID},
		)
	}
	return out
}

// SetTSCDeadline sets the TSC-deadline timer feature (leaf 0x1 ECX bit 24)
// in entries, for a KVM whose local APIC emulates it. Without it a guest
// that has no PIT or HPET (a hardware-reduced ACPI platform) must calibrate
// the local APIC timer against a clock it may not have.
func SetTSCDeadline(entries []CPUIDEntry) {
	for i := range entries {
		if entries[i].Function == leafFeatures {
			entries[i].ECX |= ecxTSCDeadline
		}
	}
}
