//go:build !husk_nohooks

package hooks_test

import (
	"testing"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/wasmhost"
)

// hooks.DefaultCacheDir is spelled out (so that a build without the engine
// need not link the Wasm host to name it): it must be the host's.
func TestDefaultCacheDirIsTheHosts(t *testing.T) {
	if hooks.DefaultCacheDir != wasmhost.DefaultCacheDir {
		t.Errorf("hooks.DefaultCacheDir = %q, wasmhost.DefaultCacheDir = %q", hooks.DefaultCacheDir, wasmhost.DefaultCacheDir)
	}
	if !hooks.Built {
		t.Error("hooks.Built is false in a build with the engine")
	}
}
