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
