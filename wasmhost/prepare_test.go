package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// preparedSources is the sha256 of the code prepareModule runs, as
// prepareVersion was last set for it.
const preparedSources = "390b4f4225984cd68ad73cd3e1060f47e099b96d36705c23f61e1d8757f41492"

// TestPrepareVersion fails when the code that prepares a module changed
// and prepareVersion did not: a prepared module kept by an older husk
// under the same CacheDir would be taken as this husk's.
func TestPrepareVersion(t *testing.T) {
	d := sha256.New()
	for _, f := range []string{"tables.go", "sizes.go", "code.go", "stack.go", "prepare.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d.Write(b)
	}
	if got := hex.EncodeToString(d.Sum(nil)); got != preparedSources {
		t.Errorf("the code preparing modules changed (sources %s, recorded %s): bump prepareVersion (now %q) and record the new sum in preparedSources", got, preparedSources, prepareVersion)
	}
}

// TestPreparedCache: with a CacheDir, the first Load keeps the prepared
// module (what prepareModule makes, and its CRC), and later Hosts take it
// from there and run it; a damaged file is prepared again and replaced;
// a module refused by the preparation is not kept.
func TestPreparedCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := wasmtest.WAT(t, filepath.Join("testdata", "decision.wat"))
	want, err := prepareModule(wasm)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ModuleConfig{Name: "d", Timeout: 10 * time.Second, MemoryLimitPages: 64, Config: []byte(`{"allow":true}`)}
	decide := func() {
		t.Helper()
		h, err := New(ctx, Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = h.Close(ctx) }()
		m, err := h.Load(ctx, wasm, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = m.Close(ctx) }()
		if out, err := m.Decide(ctx, "container.create", []byte(`{}`)); err != nil || string(out) != `{"allow":true}` {
			t.Fatalf("Decide: %s, %v", out, err)
		}
	}
	kept := func() []byte {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, preparedDir, "*"))
		if len(files) != 1 {
			t.Fatalf("prepared files %v, want one", files)
		}
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	decide()
	b := kept()
	if !bytes.Equal(b[:len(b)-4], want) {
		t.Fatal("the kept module is not what prepareModule makes")
	}
	// Taken from the file: a marked copy is what the next Host gets.
	h, err := New(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close(ctx) }()
	got, err := h.prepare(wasm)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("prepare from the cache: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	decide()

	// Damaged: prepared again, and the file replaced.
	files, _ := filepath.Glob(filepath.Join(dir, preparedDir, "*"))
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := h.prepare(wasm); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("prepare with a damaged file: %v", err)
	}
	if b := kept(); !bytes.Equal(b[:len(b)-4], want) {
		t.Error("the damaged file was not replaced")
	}
	if err := os.WriteFile(files[0], b[:3], 0o600); err != nil { // cut short
		t.Fatal(err)
	}
	decide()

	// Refused: not kept.
	if _, err := h.prepare(wasmtest.WAT(t, filepath.Join("testdata", "bigtable.wat"))); err == nil {
		t.Fatal("bigtable prepared")
	}
	kept()
}
