package runtime

import (
	"strings"
	"testing"
)

func TestPodOf(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want Pod
	}{
		{"plain container", nil, Pod{SandboxID: "c1", IsSandbox: true}},
		{"containerd CRI sandbox", map[string]string{annContainerType: "sandbox", annSandboxID: "c1"}, Pod{SandboxID: "c1", IsSandbox: true, CRI: true}},
		{"containerd CRI container", map[string]string{annContainerType: "container", annSandboxID: "sb"}, Pod{SandboxID: "sb", CRI: true}},
		{"CRI-O sandbox", map[string]string{annCRIOType: "sandbox", annCRIOSandboxID: "c1"}, Pod{SandboxID: "c1", IsSandbox: true, CRI: true}},
		{"CRI-O container", map[string]string{annCRIOType: "container", annCRIOSandboxID: "sb"}, Pod{SandboxID: "sb", CRI: true}},
		{"container without sandbox id is its own", map[string]string{annContainerType: "container"}, Pod{SandboxID: "c1", IsSandbox: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodOf("c1", tt.ann); got != tt.want {
				t.Fatalf("PodOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSandboxResources(t *testing.T) {
	res, err := SandboxResources(map[string]string{
		annSandboxMemory: "134217728", annSandboxCPUQuota: "50000", annSandboxCPUPeriod: "100000", annSandboxCPUShares: "512",
	})
	if err != nil {
		t.Fatal(err)
	}
	if *res.Memory.Limit != 128<<20 || *res.CPU.Quota != 50000 || *res.CPU.Period != 100000 || *res.CPU.Shares != 512 {
		t.Fatalf("resources = %+v %+v", res.Memory, res.CPU)
	}
	if res, err := SandboxResources(map[string]string{annSandboxMemory: "0", annSandboxCPUPeriod: "100000"}); err != nil || res != nil {
		t.Fatalf("no limit: %+v, %v", res, err)
	}
	if _, err := SandboxResources(map[string]string{annSandboxMemory: "lots"}); err == nil || !strings.Contains(err.Error(), annSandboxMemory) {
		t.Fatalf("malformed: %v", err)
	}
}

// TestSandboxResourcesUnlimitedQuota: the kubelet sizes a pod with
// exclusive CPUs (static CPU manager, DisableCPUQuotaWithExclusiveCPUs)
// with a CFS quota of -1, the cgroup's "no quota", and containerd's CRI
// passes it on as io.kubernetes.cri.sandbox-cpu-quota=-1: such a pod has
// no CPU limit, and must start.
func TestSandboxResourcesUnlimitedQuota(t *testing.T) {
	res, err := SandboxResources(map[string]string{
		annSandboxMemory: "0", annSandboxCPUQuota: "-1", annSandboxCPUPeriod: "100000", annSandboxCPUShares: "2048",
	})
	if err != nil {
		t.Fatalf("quota -1: %v", err)
	}
	if res == nil || res.CPU == nil || res.CPU.Quota != nil || *res.CPU.Shares != 2048 {
		t.Fatalf("resources = %+v, want shares only", res)
	}
	if _, err := SandboxResources(map[string]string{annSandboxCPUQuota: "-2"}); err == nil {
		t.Fatal("quota -2 accepted")
	}
}
