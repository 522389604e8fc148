package linux

import (
	"reflect"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

// current is a container's limits before an update: every field the merge
// knows set to something an update can be told from.
func current() *cgroups.Resources {
	return &cgroups.Resources{
		Memory: 256 << 20, MemoryReservation: 128 << 20, MemorySwap: 512 << 20,
		CpuShares: 1024, CpuWeight: 100, CpuQuota: 50000, CpuPeriod: 100000,
		CpuRtRuntime: 1, CpuRtPeriod: 2, CpusetCpus: "0", CpusetMems: "0",
		PidsLimit: ptr(int64(100)), CpuBurst: ptr(uint64(1)), CPUIdle: ptr(int64(0)),
		BlkioWeight: 500, BlkioLeafWeight: 500, MemorySwappiness: ptr(uint64(60)),
		HugetlbLimit: []*cgroups.HugepageLimit{{Pagesize: "2MB", Limit: 1}},
		Unified:      map[string]string{"memory.high": "max", "pids.max": "100"},
	}
}

// TestMergeResources: an update changes exactly the limits it sets and
// keeps every other one, as `runc update` does.
func TestMergeResources(t *testing.T) {
	tests := []struct {
		name string
		upd  cgroups.Resources
		want func(r *cgroups.Resources)
	}{
		{"nothing set changes nothing", cgroups.Resources{}, func(*cgroups.Resources) {}},
		{"memory", cgroups.Resources{Memory: 1 << 30, MemorySwap: -1}, func(r *cgroups.Resources) {
			r.Memory, r.MemorySwap = 1<<30, -1
		}},
		{"memory reservation", cgroups.Resources{MemoryReservation: 64 << 20}, func(r *cgroups.Resources) { r.MemoryReservation = 64 << 20 }},
		{"cpu quota and period", cgroups.Resources{CpuQuota: -1, CpuPeriod: 200000}, func(r *cgroups.Resources) {
			r.CpuQuota, r.CpuPeriod = -1, 200000
		}},
		// cgroup v2 reads the weight, v1 the shares: specconv sets both.
		{"cpu shares and weight", cgroups.Resources{CpuShares: 2048, CpuWeight: 79}, func(r *cgroups.Resources) {
			r.CpuShares, r.CpuWeight = 2048, 79
		}},
		{"realtime", cgroups.Resources{CpuRtRuntime: 10, CpuRtPeriod: 20}, func(r *cgroups.Resources) {
			r.CpuRtRuntime, r.CpuRtPeriod = 10, 20
		}},
		{"cpuset", cgroups.Resources{CpusetCpus: "0-1", CpusetMems: "0"}, func(r *cgroups.Resources) { r.CpusetCpus = "0-1" }},
		{"pids limit", cgroups.Resources{PidsLimit: ptr(int64(-1))}, func(r *cgroups.Resources) { r.PidsLimit = ptr(int64(-1)) }},
		{"cpu burst", cgroups.Resources{CpuBurst: ptr(uint64(0))}, func(r *cgroups.Resources) { r.CpuBurst = ptr(uint64(0)) }},
		{"cpu idle", cgroups.Resources{CPUIdle: ptr(int64(1))}, func(r *cgroups.Resources) { r.CPUIdle = ptr(int64(1)) }},
		{"blkio weights", cgroups.Resources{BlkioWeight: 10, BlkioLeafWeight: 20}, func(r *cgroups.Resources) {
			r.BlkioWeight, r.BlkioLeafWeight = 10, 20
		}},
		{"swappiness", cgroups.Resources{MemorySwappiness: ptr(uint64(0))}, func(r *cgroups.Resources) { r.MemorySwappiness = ptr(uint64(0)) }},
		{"memory check before update", cgroups.Resources{MemoryCheckBeforeUpdate: true}, func(r *cgroups.Resources) { r.MemoryCheckBeforeUpdate = true }},
		{"hugetlb replaces the list", cgroups.Resources{HugetlbLimit: []*cgroups.HugepageLimit{{Pagesize: "1GB", Limit: 2}}}, func(r *cgroups.Resources) {
			r.HugetlbLimit = []*cgroups.HugepageLimit{{Pagesize: "1GB", Limit: 2}}
		}},
		{"unified merges by key", cgroups.Resources{Unified: map[string]string{"memory.high": "1G", "cpu.idle": "1"}}, func(r *cgroups.Resources) {
			r.Unified = map[string]string{"memory.high": "1G", "pids.max": "100", "cpu.idle": "1"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := current(), current()
			tt.want(want)
			mergeResources(got, &tt.upd)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("merged:\n%+v\nwant:\n%+v", got, want)
			}
		})
	}
	// Into limits without a unified map.
	got := &cgroups.Resources{}
	mergeResources(got, &cgroups.Resources{Unified: map[string]string{"pids.max": "5"}})
	if got.Unified["pids.max"] != "5" {
		t.Errorf("unified into none: %v", got.Unified)
	}
}

// TestUpdateOfSharesReachesCgroupV2: an OCI update of the CPU shares, as
// Update turns it into cgroup limits (specconv) and merges them, changes
// the weight cgroup v2 writes, not only the v1 shares. (The merge had
// dropped the weight: a shares update did nothing on a v2 host.)
func TestUpdateOfSharesReachesCgroupV2(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(512))}}}}
	upd, err := specconv.CreateCgroupConfig(&specconv.CreateOpts{CgroupName: "c", Spec: spec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur := current()
	mergeResources(cur, upd.Resources)
	if cur.CpuShares != 512 || cur.CpuWeight != cgroups.ConvertCPUSharesToCgroupV2Value(512) {
		t.Errorf("shares %d weight %d, want 512 and %d", cur.CpuShares, cur.CpuWeight, cgroups.ConvertCPUSharesToCgroupV2Value(512))
	}
}
