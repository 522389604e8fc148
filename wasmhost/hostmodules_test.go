package wasmhost

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/wazerowasi"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// TestHostModulesHoldOnlyImports: a module's runtime has a WASI host module
// only if the module imports from preview 1, holding just those functions,
// and husk's host module holds just the husk functions it imports (each
// function costs a trampoline at every load); husk's own version of a
// WASI function is the one bound.
func TestHostModulesHoldOnlyImports(t *testing.T) {
	ctx := context.Background()
	h, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close(ctx) }()
	exports := func(m *Module, name string) []string {
		t.Helper()
		mod := m.rt.Module(name)
		if mod == nil {
			return nil
		}
		return slices.Sorted(maps.Keys(mod.ExportedFunctionDefinitions()))
	}
	load := func(file, config string) *Module {
		t.Helper()
		cfg := ModuleConfig{Name: file, Timeout: 10 * time.Second, MemoryLimitPages: 64}
		if config != "" {
			cfg.Config = []byte(config)
		}
		m, err := h.Load(ctx, wasmtest.WAT(t, filepath.Join("testdata", file)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(ctx) })
		return m
	}

	d := load("decision.wat", `{"allow":true}`) // imports husk.log, nothing of WASI
	if got := exports(d, wazerowasi.Module); got != nil {
		t.Errorf("decision.wat imports no WASI, yet its runtime has %v", got)
	}
	if got := exports(d, ImportModule); !slices.Equal(got, []string{ImportLog}) {
		t.Errorf("decision.wat's husk module: %v, want [log]", got)
	}

	s := load("sleep.wat", "")
	want := wazerowasi.Imports(s.compiled)
	slices.Sort(want)
	if got := exports(s, wazerowasi.Module); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("sleep.wat's WASI module: %v, want its imports %v", got, want)
	}
}

// TestWASIOwnAreWASIs: every function husk replaces is one of preview 1's,
// so a module importing it gets husk's version, not an instantiation error.
func TestWASIOwnAreWASIs(t *testing.T) {
	w, err := wazerowasi.Load()
	if err != nil {
		t.Fatal(err)
	}
	for name := range wasiOwn {
		if _, ok := w.Defs[name]; !ok {
			t.Errorf("%s is husk's, but wazero's preview 1 has no such function", name)
		}
	}
}
