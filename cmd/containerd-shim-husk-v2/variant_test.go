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
// nohooks leaves the hook engine out: no wazero in the shim, -v says so,
// and huskctl check and config check refuse a configuration with hooks
// (the shim's refusal at create is hooks.TestNoHookEngine's).
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
		hooks                bool
	}{
		{"full", "seccomp", "virt (builtin, qemu)", true},
		{"novmm", "seccomp husk_novmm", "virt (qemu)", true},
		{"nohooks", "seccomp husk_nohooks", "virt (builtin, qemu)", false},
	} {
		t.Run(v.name, func(t *testing.T) {
			shim := build(v.tags, "./cmd/containerd-shim-husk-v2", "shim-"+v.name)
			out, err := run(shim, "-v")
			if err != nil || !strings.Contains(out, "Handlers:   linux, wasm, "+v.handlers+"\n") {
				t.Errorf("%s -v: %v\n%s\nwant handlers %q", v.name, err, out, v.handlers)
			}
			wantHooks := "Hooks:      Wasm modules (wazero v"
			if !v.hooks {
				wantHooks = "Hooks:      none: the hook engine is not in this build"
			}
			if !strings.Contains(out, wantHooks) {
				t.Errorf("%s -v: want %q in\n%s", v.name, wantHooks, out)
			}
			deps, err := exec.Command(goBin, "version", "-m", shim).CombinedOutput()
			if err != nil {
				t.Fatalf("go version -m: %v\n%s", err, deps)
			}
			if linked := strings.Contains(string(deps), "github.com/tetratelabs/wazero"); linked != v.hooks {
				t.Errorf("%s: wazero linked into the shim: %v, want %v", v.name, linked, v.hooks)
			}
			if v.name == "nohooks" {
				checkNoHooks(t, build(v.tags, "./cmd/huskctl", "huskctl-"+v.name), dir, run)
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

// checkNoHooks: huskctl of the nohooks build refuses a configuration with a
// hook, in check and config check, and accepts one without.
func checkNoHooks(t *testing.T, huskctl, dir string, run func(string, ...string) (string, error)) {
	t.Helper()
	plain := filepath.Join(dir, "plain.toml")
	withHook := filepath.Join(dir, "hook.toml")
	if err := os.WriteFile(plain, []byte("[runtime]\ndefault_handler = \"linux\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := "[runtime]\ndefault_handler = \"linux\"\n[[hook]]\nname = \"deny-privileged\"\nmodule = \"" + filepath.Join(dir, "none.wasm") + "\"\npoints = [\"container.create\"]\n"
	if err := os.WriteFile(withHook, []byte(hook), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(huskctl, "check", "--config", plain); err != nil || !strings.Contains(out, "no   hook engine  the hook engine is not in this build") {
		t.Errorf("huskctl check without hooks in the nohooks build: %v\n%s", err, out)
	}
	out, err := run(huskctl, "check", "--config", withHook)
	if err == nil || !strings.Contains(out, "FAIL hook engine  the hook engine is not in this build") {
		t.Errorf("huskctl check with a hook in the nohooks build: %v\n%s", err, out)
	}
	out, err = run(huskctl, "config", "check", "--config", withHook)
	if err == nil || !strings.Contains(out, "the hook engine is not in this build") || !strings.Contains(out, "deny-privileged") {
		t.Errorf("huskctl config check with a hook in the nohooks build: %v\n%s", err, out)
	}
}
