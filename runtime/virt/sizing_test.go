package virt

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

func i64(n int64) *int64   { return &n }
func u64(n uint64) *uint64 { return &n }
func cpuRes(quota int64, period uint64) *specs.LinuxResources {
	c := &specs.LinuxCPU{Quota: &quota}
	if period != 0 {
		c.Period = &period
	}
	return &specs.LinuxResources{CPU: c}
}

func TestSizingOf(t *testing.T) {
	tests := []struct {
		name string
		res  *specs.LinuxResources
		want podSizing
	}{
		{"no sizing", nil, podSizing{}},
		{"nothing limited", &specs.LinuxResources{}, podSizing{}},
		{"one CPU exactly", cpuRes(100000, 100000), podSizing{VCPUs: 1}},
		{"half a CPU is a vCPU", cpuRes(50000, 100000), podSizing{VCPUs: 1}},
		{"1.5 CPUs are two", cpuRes(150000, 100000), podSizing{VCPUs: 2}},
		{"a quota without a period is of 100 ms", cpuRes(250000, 0), podSizing{VCPUs: 3}},
		{"another period", cpuRes(20000, 10000), podSizing{VCPUs: 2}},
		{"a quota that does not divide", cpuRes(20001, 10000), podSizing{VCPUs: 3}},
		{"shares alone add nothing", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024)}}, podSizing{}},
		{"an absurd quota saturates", cpuRes(math.MaxInt64, 1), podSizing{VCPUs: math.MaxUint32}},
		{"128 MiB", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(128 << 20)}}, podSizing{MemoryMiB: 128}},
		{"a byte over is a MiB more", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(128<<20 + 1)}}, podSizing{MemoryMiB: 129}},
		{"a byte is a MiB", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1)}}, podSizing{MemoryMiB: 1}},
		{"both", &specs.LinuxResources{CPU: cpuRes(200000, 100000).CPU, Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}},
			podSizing{VCPUs: 2, MemoryMiB: 1024}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sizingOf(tt.res); got != tt.want {
				t.Errorf("sizingOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSizingGrowSaturates(t *testing.T) {
	vm := handler.VM{VCPUs: 1, MemoryMiB: 256}
	podSizing{VCPUs: 2, MemoryMiB: 512}.grow(&vm)
	if vm.VCPUs != 3 || vm.MemoryMiB != 768 {
		t.Errorf("1 vCPU, 256 MiB grown by 2, 512: %d, %d", vm.VCPUs, vm.MemoryMiB)
	}
	podSizing{VCPUs: math.MaxUint32, MemoryMiB: math.MaxUint64}.grow(&vm)
	if vm.VCPUs != math.MaxUint32 || vm.MemoryMiB != math.MaxUint64 {
		t.Errorf("grown past the top: %d, %d, want saturated", vm.VCPUs, vm.MemoryMiB)
	}
	cfg := config.Default().Virt
	if err := withinLimits(&vm, cfg, smallHost); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a saturated VM: %v, want invalid argument", err)
	}
}

// recordingPolicy records the VM the hook at sandbox.vm was asked about;
// the other points are not asked in these tests.
type recordingPolicy struct {
	handler.Policy
	seen *handler.VM
}

func (p recordingPolicy) VM(_ context.Context, vm *handler.VM) error { *p.seen = *vm; return nil }

// TestPodSizedVM: a pod's VM is the configured base plus the CRI's
// sandbox sizing; the hook at sandbox.vm sees the sum; a pod bigger than
// the bounds is refused, naming the bound, and no VM starts.
func TestPodSizedVM(t *testing.T) {
	e := newEnv(t)
	e.cfg.Virt.VCPUs, e.cfg.Virt.MemoryMiB = 1, 256
	e.cfg.Virt.MaxVCPUs, e.cfg.Virt.MaxMemoryMiB = 3, 2048
	var seen handler.VM
	res := &specs.LinuxResources{CPU: cpuRes(150000, 100000).CPU, Memory: &specs.LinuxMemory{Limit: i64(300 << 20)}}
	sb, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "sized", StateDir: t.TempDir(), Config: &e.cfg,
		Resources: res, Policy: recordingPolicy{seen: &seen}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(e.ctx)
	got := e.hv.started[len(e.hv.started)-1].cfg
	if got.VCPUs != 3 || got.MemoryMiB != 556 {
		t.Errorf("VM of %d vCPUs, %d MiB; want 1+2 and 256+300", got.VCPUs, got.MemoryMiB)
	}
	if seen.VCPUs != 3 || seen.MemoryMiB != 556 {
		t.Errorf("sandbox.vm saw %d vCPUs, %d MiB; want the sized VM", seen.VCPUs, seen.MemoryMiB)
	}

	for _, tt := range []struct {
		name string
		res  *specs.LinuxResources
		want string
	}{
		{"more CPUs than max_vcpus", cpuRes(300000, 100000), "more than virt.max_vcpus (3)"},
		{"more memory than max_memory_mib", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 30)}}, "more than virt.max_memory_mib (2048 MiB)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.hv.started)
			_, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "big", StateDir: t.TempDir(), Config: &e.cfg, Resources: tt.res})
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want an invalid-argument error saying %q", err, tt.want)
			}
			if len(e.hv.started) != before {
				t.Errorf("a VM was started")
			}
		})
	}
}
