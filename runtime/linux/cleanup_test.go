package linux

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// tmpfsAt mounts a tmpfs at dir for the test's life.
func tmpfsAt(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting a tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

// mounted reports whether dir is on another filesystem than its parent
// (the tmpfs tmpfsAt mounted).
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		t.Fatal(err)
	}
	return st.Dev != parent.Dev
}

// TestCleanupUnmountsTheRecordedRootfs: after a shim died, Cleanup
// unmounts the rootfs where Create mounted it (the spec's root.path, here
// outside the bundle), and leaves bundle/rootfs, which husk did not mount
// for this container, as it is. (Cleanup had unmounted bundle/rootfs
// whatever root.path said.)
func TestCleanupUnmountsTheRecordedRootfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	sandboxDir, bundle := t.TempDir(), t.TempDir()
	root := filepath.Join(t.TempDir(), "elsewhere")
	tmpfsAt(t, root)
	users := filepath.Join(bundle, "rootfs")
	tmpfsAt(t, users)
	if err := writeRootfsRecord(sandboxDir, "c", root); err != nil {
		t.Fatal(err)
	}

	if _, err := (&Handler{}).Cleanup(context.Background(), sandboxDir, "c", bundle); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if mounted(t, root) {
		t.Errorf("the recorded rootfs %s is still mounted", root)
	}
	if !mounted(t, users) {
		t.Errorf("%s, which husk did not mount for the container, was unmounted", users)
	}
	if _, ok, err := readRootfsRecord(sandboxDir, "c"); ok || err != nil {
		t.Errorf("the record is left (%v, %v)", ok, err)
	}
	// Again: nothing recorded, nothing to do.
	if _, err := (&Handler{}).Cleanup(context.Background(), sandboxDir, "c", bundle); err != nil {
		t.Fatalf("a second Cleanup: %v", err)
	}
	if !mounted(t, users) {
		t.Errorf("a Cleanup without a record unmounted %s", users)
	}
}

// TestRootfsRecordIsChecked: a record names one container by a plain id,
// and a record that is not an absolute clean path is refused rather than
// unmounted.
func TestRootfsRecordIsChecked(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"", ".", "..", "../x", "a/b"} {
		if err := writeRootfsRecord(dir, id, "/r"); err == nil {
			t.Errorf("a record for id %q was written", id)
		}
	}
	p, err := rootfsRecordPath(dir, "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"rootfs", "/a/../b", ""} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if target, ok, err := readRootfsRecord(dir, "c"); err == nil {
			t.Errorf("record %q read as %q, %v", bad, target, ok)
		}
	}
}
