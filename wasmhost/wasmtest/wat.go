// Package wasmtest compiles WebAssembly text for tests, with Debian's
// wat2wasm (package wabt, installed by hack/install-tools.sh). Tests that
// need it skip, saying why, where wat2wasm is missing.
package wasmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	mu       sync.Mutex
	compiled = map[string][]byte{} // by absolute path; guarded by mu
)

// WAT returns the binary of the WebAssembly text file at path, compiled
// once per test process.
func WAT(tb testing.TB, path string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		tb.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if b, ok := compiled[abs]; ok {
		return b
	}
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		tb.Skip("wat2wasm not found: install Debian's wabt (hack/install-tools.sh does)")
	}
	out := filepath.Join(tb.TempDir(), filepath.Base(path)+".wasm")
	var stderr bytes.Buffer
	cmd := exec.Command(tool, "-o", out, abs)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("wat2wasm %s: %v\n%s", path, err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	compiled[abs] = b
	return b
}
