package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The build variants (make build VARIANT=...): each builds, and what it
// leaves out answers with a clear error. novmm leaves husk's own VMM out of
// the shim and huskctl: the virt handler offers qemu only, huskctl check
// says the builtin backend is not in the build, and huskctl vm refuses.
func TestBuildVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shim and huskctl twice; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go toolchain on PATH: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := func(tags, pkg, out string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		path := filepath.Join(dir, out)
		cmd := exec.CommandContext(ctx, goBin, "build", "-tags", tags, "-o", path, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %q %s: %v\n%s", tags, pkg, err, out)
		}
		return path
	}
	run := func(bin string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return string(out), err
	}
	for _, v := range []struct {
		name, tags, handlers string
	}{
		{"full", "seccomp", "virt (builtin, qemu)"},
		{"novmm", "seccomp husk_novmm", "virt (qemu)"},
	} {
		t.Run(v.name, func(t *testing.T) {
			shim := build(v.tags, "./cmd/containerd-shim-husk-v2", "shim-"+v.name)
			out, err := run(shim, "-v")
			if err != nil || !strings.Contains(out, "Handlers:   linux, wasm, "+v.handlers+"\n") {
				t.Errorf("%s -v: %v\n%s\nwant handlers %q", v.name, err, out, v.handlers)
			}
			if v.name != "novmm" {
				return
			}
			huskctl := build(v.tags, "./cmd/huskctl", "huskctl-"+v.name)
			out, err = run(huskctl, "vm", "run", "--kernel", "/nonexistent")
			if err == nil || !strings.Contains(out, "husk's VMM is not in this build") {
				t.Errorf("huskctl vm run in the novmm build: %v\n%s", err, out)
			}
			cfg := filepath.Join(dir, "builtin.toml")
			if err := os.WriteFile(cfg, []byte("[runtime]\ndefault_handler = \"virt\"\n[virt]\nhypervisor = \"builtin\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err = run(huskctl, "check", "--config", cfg)
			if err == nil || !strings.Contains(out, "FAIL builtin VMM  husk's VMM is not in this build") {
				t.Errorf("huskctl check of a builtin configuration in the novmm build: %v\n%s", err, out)
			}
		})
	}
}
