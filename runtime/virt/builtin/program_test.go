//go:build !husk_vmmchild

package builtin

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/version"
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

// TestVMMOfAnotherBuildIsRefused: a VMM program of another revision than
// the shim's refuses the VM with an error that says what to do; one of
// the same revision, or without one (a test or go build), runs it.
func TestVMMOfAnotherBuildIsRefused(t *testing.T) {
	needConfinement(t)
	defer func(r string) { version.Revision = r }(version.Revision)
	version.Revision = "1111111"
	for _, tt := range []struct {
		child string
		ok    bool
	}{{"2222222", false}, {"1111111", true}, {"unknown", true}} {
		h := testHypervisor()
		h.env = append(h.env, testRevisionEnv+"="+tt.child)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := h.Start(ctx, testConfig(t))
		cancel()
		switch {
		case tt.ok && err != nil:
			t.Errorf("child %s: Start: %v", tt.child, err)
		case tt.ok:
			v.Stop(context.Background())
		case err == nil:
			v.Stop(context.Background())
			t.Errorf("child %s: a VMM of another build ran the VM", tt.child)
		case !strings.Contains(err.Error(), "revision 2222222, the shim that started it 1111111") || !strings.Contains(err.Error(), "make install"):
			t.Errorf("child %s: %v, want the two revisions and what to do", tt.child, err)
		}
	}
	if err := checkBuild("", "abc"); err != nil {
		t.Errorf("a parent without a revision: %v", err)
	}
}
