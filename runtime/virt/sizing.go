package virt

import (
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/handler"
)

// defaultCFSPeriod is the kernel's CFS period (100 ms), which a quota
// without a period is a share of.
const defaultCFSPeriod = 100000

// podSizing is what a pod adds to its VM on top of the configured base:
// the CRI's sandbox sizing (the sum of its containers' limits, which the
// kubelet sends as the io.kubernetes.cri.sandbox-* annotations) turned
// into whole vCPUs and MiB. The base stays for the guest's kernel and
// agent, so a pod's containers get what they were promised on top of it
// (Kata sizes a pod's VM the same way under static sandbox sizing).
type podSizing struct {
	VCPUs     uint32
	MemoryMiB uint64
}

// sizingOf reads res, the pod's sandbox resources (nil: none): a CPU
// quota of q µs per period p µs asks for ceil(q/p) vCPUs, a memory limit
// of b bytes for ceil(b/1 MiB) MiB. Shares alone add nothing (they weigh,
// they do not bound). Absurd values saturate rather than wrap, so that
// withinLimits refuses them by name.
func sizingOf(res *specs.LinuxResources) podSizing {
	var s podSizing
	if res == nil {
		return s
	}
	if res.CPU != nil && res.CPU.Quota != nil && *res.CPU.Quota > 0 {
		q := uint64(*res.CPU.Quota)
		p := uint64(defaultCFSPeriod)
		if res.CPU.Period != nil && *res.CPU.Period > 0 {
			p = *res.CPU.Period
		}
		n := q / p
		if q%p != 0 {
			n++
		}
		s.VCPUs = uint32(min(n, math.MaxUint32))
	}
	if res.Memory != nil && res.Memory.Limit != nil && *res.Memory.Limit > 0 {
		b := uint64(*res.Memory.Limit)
		mib := b >> 20
		if b&(1<<20-1) != 0 {
			mib++
		}
		s.MemoryMiB = mib
	}
	return s
}

// grow adds s to vm, saturating: a sum past what a VM can be is refused
// by vm.Check or withinLimits, never wrapped into a small VM.
func (s podSizing) grow(vm *handler.VM) {
	vm.VCPUs = uint32(min(uint64(vm.VCPUs)+uint64(s.VCPUs), math.MaxUint32))
	if vm.MemoryMiB > math.MaxUint64-s.MemoryMiB {
		vm.MemoryMiB = math.MaxUint64
	} else {
		vm.MemoryMiB += s.MemoryMiB
	}
}
