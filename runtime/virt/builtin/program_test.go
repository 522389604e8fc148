//go:build !husk_vmmchild

package builtin

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFindVMMBinary: the VMM program next to the shim is used only when it
// is an executable regular file.
func TestFindVMMBinary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, VMMBinary)
	if got := findVMMBinaryIn(dir); got != "" {
		t.Errorf("none there: %q, want \"\"", got)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findVMMBinaryIn(dir); got != "" {
		t.Errorf("a directory: %q, want \"\"", got)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := findVMMBinaryIn(dir); got != "" {
		t.Errorf("not executable: %q, want \"\"", got)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findVMMBinaryIn(dir); got != p {
		t.Errorf("an executable: %q, want %q", got, p)
	}
	if got := (&Hypervisor{}).program(); got != "/proc/self/exe" {
		t.Errorf("without one the program is %q, want the shim itself", got)
	}
}

// TestStartRunsTheVMMBinary: with a VMM program found, the VMM process runs
// that file, not the shim's (here a copy of this test binary, which
// TestMain dispatches to Main as husk-vmm's main does).
func TestStartRunsTheVMMBinary(t *testing.T) {
	needConfinement(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), VMMBinary)
	copyFile(t, exe, bin)
	h := testHypervisor()
	h.binary = findVMMBinaryIn(filepath.Dir(bin))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := h.Start(ctx, testConfig(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer v.Stop(context.Background())
	running, err := os.Stat("/proc/" + itoa(v.Pid()) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(running, want) {
		t.Errorf("the VMM process runs %v, want %s", running.Sys(), bin)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
