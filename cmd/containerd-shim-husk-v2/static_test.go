package main

import (
	"context"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStaticBinaries runs `make static` and checks that every binary it
// writes is fully static: no PT_INTERP (no loader), no PT_DYNAMIC and no
// .dynamic section (no shared library at all), and that each runs.
func TestStaticBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four binaries; skipped with -short")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skipf("no make: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, makeBin, "-s", "static", "BIN="+bin)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make static: %v\n%s", err, out)
	}
	for _, b := range []struct {
		name string
		args []string // a run that exits 0
	}{
		{"containerd-shim-husk-v2", []string{"-v"}},
		{"huskctl", []string{"version"}},
		{"husk-agent", nil},
		{"husk-wasm-runner", nil},
		{"husk-vmm", nil}, // runtime/virt/builtin's VMM process
	} {
		path := filepath.Join(bin, "static", b.name)
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s: %v", b.name, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s has a %v program header: not static", b.name, p.Type)
			}
		}
		if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
			t.Errorf("%s has a .dynamic or .interp section: not static", b.name)
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs %v", b.name, libs)
		}
		f.Close()
		if b.args != nil {
			if out, err := exec.CommandContext(ctx, path, b.args...).CombinedOutput(); err != nil {
				t.Errorf("%s %v: %v\n%s", b.name, b.args, err, out)
			}
		}
	}
}
