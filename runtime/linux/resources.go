package linux

import "github.com/opencontainers/cgroups"

// mergeResources copies into cur every limit that upd sets, leaving the
// others as they are, as `runc update` does. upd comes from specconv, which
// sets the cgroup v2 CPU weight beside the v1 shares: both are merged, or a
// shares update would change nothing on a v2 host. Per-device blkio limits
// are not merged (the CRI never updates them).
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
	setU(&cur.CpuWeight, upd.CpuWeight)
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
	if upd.CPUIdle != nil {
		cur.CPUIdle = upd.CPUIdle
	}
	if upd.BlkioWeight != 0 {
		cur.BlkioWeight = upd.BlkioWeight
	}
	if upd.BlkioLeafWeight != 0 {
		cur.BlkioLeafWeight = upd.BlkioLeafWeight
	}
	if upd.MemoryCheckBeforeUpdate {
		cur.MemoryCheckBeforeUpdate = true
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
