package linux

import "github.com/opencontainers/cgroups"

// mergeResources copies into cur every limit that upd sets, leaving the
// others as they are.
func mergeResources(cur, upd *cgroups.Resources) {
	setI := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	setU := func(dst *uint64, v uint64) {
		if v != 0 {
			*dst = v
		}
	}
	setS := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setI(&cur.Memory, upd.Memory)
	setI(&cur.MemoryReservation, upd.MemoryReservation)
	setI(&cur.MemorySwap, upd.MemorySwap)
	setU(&cur.CpuShares, upd.CpuShares)
	setI(&cur.CpuQuota, upd.CpuQuota)
	setU(&cur.CpuPeriod, upd.CpuPeriod)
	setI(&cur.CpuRtRuntime, upd.CpuRtRuntime)
	setU(&cur.CpuRtPeriod, upd.CpuRtPeriod)
	setS(&cur.CpusetCpus, upd.CpusetCpus)
	setS(&cur.CpusetMems, upd.CpusetMems)
	if upd.PidsLimit != nil {
		cur.PidsLimit = upd.PidsLimit
	}
	if upd.CpuBurst != nil {
		cur.CpuBurst = upd.CpuBurst
	}
	if upd.BlkioWeight != 0 {
		cur.BlkioWeight = upd.BlkioWeight
	}
	if upd.MemorySwappiness != nil {
		cur.MemorySwappiness = upd.MemorySwappiness
	}
	if len(upd.HugetlbLimit) > 0 {
		cur.HugetlbLimit = upd.HugetlbLimit
	}
	if len(upd.Unified) > 0 {
		if cur.Unified == nil {
			cur.Unified = map[string]string{}
		}
		for k, v := range upd.Unified {
			cur.Unified[k] = v
		}
	}
}
