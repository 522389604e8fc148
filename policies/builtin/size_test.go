package builtin

import (
	"bytes"
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

// TestBuiltinsAreSmall pins what brings P6 (a pod's first container with
// five hook modules within 10 ms of none) within reach: each built-in is a
// module of a few kB that imports only husk's functions, with no runtime
// to decode, validate or start (a Go built-in was ~2 MB).
func TestBuiltinsAreSmall(t *testing.T) {
	const limit = 32 << 10
	for _, dir := range []string{denyPrivileged, resourceDefaults, readonlyRootfs, hostPathAllowlist, auditLog, allowedImages, execAllowlist, vmSizing} {
		wasm := moduletest.Module(t, dir)
		if len(wasm) > limit {
			t.Errorf("%s: %d bytes, over %d", dir, len(wasm), limit)
		}
		if bytes.Contains(wasm, []byte("wasi_snapshot_preview1")) {
			t.Errorf("%s imports WASI", dir)
		}
		if bytes.Contains(wasm, []byte("_initialize")) {
			t.Errorf("%s exports _initialize: a runtime to start", dir)
		}
	}
}
