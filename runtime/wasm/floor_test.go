package wasm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestModulePages: the module's page limit is what the memory limit leaves
// after the runner and the compiled code (measured from the cache entry,
// else estimated from the module's size); a limit that leaves nothing is
// refused, saying what the runtime needs (#13 item 7).
func TestModulePages(t *testing.T) {
	lim := func(n int64) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &n}}}}
	}
	entry := filepath.Join(t.TempDir(), "entry")
	if err := os.WriteFile(entry, make([]byte, 10<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 1000) // estimated: 4000 bytes compiled
	for _, tt := range []struct {
		name  string
		spec  *specs.Spec
		entry string
		wasm  []byte
		want  uint32
	}{
		{"no limit", &specs.Spec{}, "", small, 65536},
		{"no memory section", &specs.Spec{Linux: &specs.Linux{}}, "", small, 65536},
		{"negative", lim(-1), "", small, 65536},
		{"huge", lim(1 << 40), "", small, 65536},
		{"estimated", lim(64 << 20), "", small, uint32((64<<20 - runnerFloor - 4000) / 65536)},
		{"measured", lim(64 << 20), entry, small, (64 - 4 - 10) * 16},
		{"missing entry: estimated", lim(64 << 20), entry + "-gone", small, uint32((64<<20 - runnerFloor - 4000) / 65536)},
	} {
		got, err := modulePages(tt.spec, tt.entry, tt.wasm)
		if err != nil || got != tt.want {
			t.Errorf("%s: %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	// A module with 10 MiB of compiled code loads above 24 MiB (4 + 2 x
	// 10) and then has what is left after 4 + 10: 26 MiB gives it 12 MiB.
	if got, err := modulePages(lim(26<<20), entry, small); err != nil || got != 12*16 {
		t.Errorf("26 MiB: %d, %v; want 192 pages", got, err)
	}
	_, err := modulePages(lim(24<<20), entry, small)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("24 MiB: %v, want invalid argument", err)
	}
	for _, w := range []string{"memory limit 24.0 MiB is below what the Wasm runtime needs to load this module", "about 24.0 MiB", "husk-wasm-runner 4.0 MiB", "compiled code of 10.0 MiB"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}
