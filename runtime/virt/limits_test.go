package virt

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// A host of 4 CPUs and 8 GiB.
func smallHost() (uint32, uint64, error) { return 4, 8192, nil }

func TestWithinLimits(t *testing.T) {
	tests := []struct {
		name    string
		vm      handler.VM
		maxCPUs uint32
		maxMiB  uint64
		wantErr string // "" when allowed
	}{
		{"fits the host", handler.VM{VCPUs: 4, MemoryMiB: 8192}, 0, 0, ""},
		{"more vCPUs than the host", handler.VM{VCPUs: 5, MemoryMiB: 256}, 0, 0, "more than the host's online CPUs (4)"},
		{"more memory than the host", handler.VM{VCPUs: 1, MemoryMiB: 8193}, 0, 0, "more than the host's memory (8192 MiB)"},
		{"4096 vCPUs", handler.VM{VCPUs: 4096, MemoryMiB: 256}, 0, 0, "vcpus 4096: want 1 to 254"},
		{"4 TiB", handler.VM{VCPUs: 1, MemoryMiB: 4 << 20}, 0, 0, "memory_mib 4194304: want 64 to 262144"},
		{"more than max_vcpus", handler.VM{VCPUs: 3, MemoryMiB: 256}, 2, 0, "more than virt.max_vcpus (2)"},
		{"more than max_memory_mib", handler.VM{VCPUs: 1, MemoryMiB: 1024}, 0, 512, "more than virt.max_memory_mib (512 MiB)"},
		{"operator allows more than the host", handler.VM{VCPUs: 8, MemoryMiB: 256}, 8, 0, ""},
		{"init=/bin/sh", handler.VM{VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"init=/bin/sh"}}, 0, 0, "init is husk's to set"},
		{"rdinit", handler.VM{VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"rdinit=/x"}}, 0, 0, "rdinit is husk's to set"},
		{"console override", handler.VM{VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"console=tty0"}}, 0, 0, "console is husk's to set"},
		{"two words in one", handler.VM{VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"quiet init=/bin/sh"}}, 0, 0, "one word of printable ASCII"},
		{"an ordinary parameter", handler.VM{VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"mitigations=off", "initcall_debug"}}, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default().Virt
			cfg.MaxVCPUs, cfg.MaxMemoryMiB = tt.maxCPUs, tt.maxMiB
			err := withinLimits(&tt.vm, cfg, smallHost)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("allowed, want an error saying %q", tt.wantErr)
			case tt.wantErr != "" && (!strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err)):
				t.Fatalf("error %v, want an invalid-argument error saying %q", err, tt.wantErr)
			}
		})
	}
}
