package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// resident counts the pages of the file at path in the page cache
// (cachestat(2), Linux 6.5).
func resident(t *testing.T, path string) (in, all int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var cs unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{}, &cs, 0); err != nil {
		t.Skipf("cachestat(2), to count the cached pages: %v", err)
	}
	return int(cs.Cache), int((st.Size() + int64(os.Getpagesize()) - 1) / int64(os.Getpagesize()))
}

// TestEvictPageCache: the density rows start each runtime's shims from
// their binary read from disk; evictPageCache must drop a file that was
// just written (dirty, then cached) from the page cache.
func TestEvictPageCache(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the temporary directory is on tmpfs, whose pages are the file itself: nothing to evict")
	}
	path := filepath.Join(dir, "binary")
	if err := os.WriteFile(path, []byte(strings.Repeat("husk", 1<<18)), 0o755); err != nil { // 1 MiB, dirty
		t.Fatal(err)
	}
	if in, all := resident(t, path); in < all/2 {
		t.Fatalf("a file just written has %d of %d pages cached: the check cannot tell", in, all)
	}
	if err := evictPageCache(path); err != nil {
		t.Fatal(err)
	}
	if in, all := resident(t, path); in > all/16 {
		t.Errorf("after evictPageCache %d of %d pages are still cached", in, all)
	}
	if err := evictPageCache(filepath.Join(dir, "missing")); err == nil {
		t.Error("evicting a missing file: no error")
	}
}

// TestShimBinary: the shim of io.containerd.NAME.v2 is found as containerd
// finds it, first in PATH order; other runtime names are refused.
func TestShimBinary(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(a, "containerd-shim-husk-v2"), filepath.Join(b, "containerd-shim-husk-v2"), filepath.Join(b, "containerd-shim-runc-v2")} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := a + ":" + b
	for rt, want := range map[string]string{
		"io.containerd.husk.v2": filepath.Join(a, "containerd-shim-husk-v2"),
		"io.containerd.runc.v2": filepath.Join(b, "containerd-shim-runc-v2"),
	} {
		got, err := findShim(path, rt)
		if err != nil || got != want {
			t.Errorf("findShim(%s) = %q, %v; want %q", rt, got, err, want)
		}
	}
	for _, rt := range []string{"io.containerd.kata.v2", "husk", "io.other.husk.v2"} {
		if got, err := findShim(path, rt); err == nil {
			t.Errorf("findShim(%s) = %q, want an error", rt, got)
		}
	}
}
