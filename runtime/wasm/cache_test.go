package wasm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/huskrt/husk/runtime/wasm/runner"
)

// testCache is a cache in a temporary directory that compiles in-process
// with the runner's code (the shim runs the runner binary for that).
func testCache(t *testing.T) *cache {
	t.Helper()
	c := newCache(t.TempDir(), "/nonexistent/husk-wasm-runner")
	c.compile = func(ctx context.Context, dir string, wasm []byte) error {
		var stderr strings.Builder
		if code := runner.Precompile(ctx, dir, bytes.NewReader(wasm), &stderr); code != 0 {
			return fmt.Errorf("precompile: exit %d: %s", code, stderr.String())
		}
		return nil
	}
	c.wazeroVersion = func() (string, error) {
		info, _ := debug.ReadBuildInfo()
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				return d.Version, nil
			}
		}
		return "dev", nil
	}
	return c
}

// TestEntryKeyMatchesWazero: husk names wazero's cache entries itself
// (entryKey) so a create can find a compiled module with a stat; this
// fails if a wazero upgrade changes the naming (Ensure would then fall back
// to wazero for every module, correct but slow).
func TestEntryKeyMatchesWazero(t *testing.T) {
	ctx := context.Background()
	c := testCache(t)
	wasm := readTestdata(t, "multi.wasm")
	entry, err := c.Ensure(ctx, "multi.wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	verDir, _ := c.verDir()
	if entry == "" || !c.keyed.Load() {
		ents, _ := os.ReadDir(verDir)
		t.Fatalf("entry %q not where husk computes it (%s); wazero wrote %v", entry, entryKey(wasm), ents)
	}
	if filepath.Base(entry) != entryKey(wasm) || filepath.Dir(entry) != verDir {
		t.Fatalf("entry %s", entry)
	}
	// Second time: a hit, same entry.
	if again, err := c.Ensure(ctx, "multi.wasm", wasm); err != nil || again != entry {
		t.Fatalf("again: %q, %v", again, err)
	}
}

func TestEnsureRejectsInvalid(t *testing.T) {
	c := testCache(t)
	if _, err := c.Ensure(context.Background(), "bad.wasm", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00")); err == nil {
		t.Fatal("a module declaring a function without code compiled")
	}
}

// TestView: a container's view holds links to its entries, readable by
// anyone, and goes away with the container (and its empty parents).
func TestView(t *testing.T) {
	ctx := context.Background()
	c := testCache(t)
	entry, err := c.Ensure(ctx, "hello.wasm", readTestdata(t, "hello.wasm"))
	if err != nil || entry == "" {
		t.Fatal(entry, err)
	}
	sandboxDir := "/run/husk/ns1/sb1"
	v, err := c.newView(sandboxDir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.add(entry); err != nil {
		t.Fatal(err)
	}
	if err := v.add(entry); err != nil {
		t.Fatal("adding twice:", err)
	}
	linked := filepath.Join(v.dir, filepath.Base(filepath.Dir(entry)), filepath.Base(entry))
	st, err := os.Stat(linked)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("linked entry: %v %v", st, err)
	}
	if err := c.removeView(sandboxDir, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "containers", "ns1")); !os.IsNotExist(err) {
		t.Fatalf("namespace directory left: %v", err)
	}
	if _, err := os.Stat(entry); err != nil {
		t.Fatalf("the cache entry went with the view: %v", err)
	}
}

// TestViewsHammer: containers of one namespace come and go at once (P4's
// 4 parallel tasks, each its own sandbox); removing a view prunes parents
// another one is being made in.
func TestViewsHammer(t *testing.T) {
	ctx := context.Background()
	c := testCache(t)
	entry, err := c.Ensure(ctx, "hello.wasm", readTestdata(t, "hello.wasm"))
	if err != nil || entry == "" {
		t.Fatal(entry, err)
	}
	const workers, rounds = 8, 200
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for i := 0; i < rounds; i++ {
				sb := filepath.Join("/run/husk/ns", fmt.Sprintf("sb-%d-%d", w, i))
				v, err := c.newView(sb, "c")
				if err == nil {
					err = v.add(entry)
				}
				if err == nil {
					err = c.removeView(sb, "c")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStampedWazeroVersion: the runner's wazero version is read from the
// binary once and then from the stamp, until the runner file changes; a
// stamp that is not a version, or names another file, is not believed.
func TestStampedWazeroVersion(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "husk-wasm-runner")
	if err := os.WriteFile(bin, []byte("one"), 0o755); err != nil {
		t.Fatal(err)
	}
	reads := 0
	version := "v1.12.0"
	read := func(string) (string, error) { reads++; return version, nil }
	check := func(want string, wantReads int) {
		t.Helper()
		v, err := stampedWazeroVersion(dir, bin, read)
		if err != nil || v != want || reads != wantReads {
			t.Fatalf("got %q, %v after %d reads of the binary; want %q after %d", v, err, reads, want, wantReads)
		}
	}
	check("v1.12.0", 1)
	check("v1.12.0", 1) // from the stamp
	// A new runner (make install): another file, read again.
	version = "v1.13.0"
	if err := os.WriteFile(bin+".new", []byte("two!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	check("v1.13.0", 2)
	check("v1.13.0", 2)
	// A stamp that says something else for this file is not believed.
	stamp := filepath.Join(dir, versionStamp)
	b, _ := os.ReadFile(stamp)
	id, _, _ := strings.Cut(string(b), " ")
	for _, bad := range []string{id + " ../../etc\n", id + " \n", id + "\n", "1:2:3:4.0:5.0 v1.13.0\n", strings.Repeat("x", 300)} {
		if err := os.WriteFile(stamp, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		n := reads
		check("v1.13.0", n+1)
	}
	// The binary's answer is not stamped when it is no version.
	os.Remove(stamp)
	version = "bad/version"
	if v, _ := stampedWazeroVersion(dir, bin, read); v != "bad/version" {
		t.Fatalf("got %q", v)
	}
	if _, err := os.Stat(stamp); err == nil {
		t.Fatal("a version that is no version was stamped")
	}
	// No runner: read (which says why), nothing stamped.
	if _, err := stampedWazeroVersion(dir, filepath.Join(dir, "missing"), func(p string) (string, error) { return "", fmt.Errorf("no %s", p) }); err == nil {
		t.Fatal("no error for a missing runner")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}
