package hooks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/wasmhost"
)

// within runs f and fails the test if it has not returned after limit (a
// hang, not slowness: limit is generous).
func within(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s still running after %v", what, limit)
	}
}

// TestModuleFileMustBeRegular: a FIFO, a directory or a device given as a
// module fails its load at once (opening a FIFO for reading would wait for
// a writer forever), and so does a file over the size limit, before it is
// read.
func TestModuleFileMustBeRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "policy.wasm")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.wasm")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, wasmhost.DefaultMaxModuleSize+1); err != nil { // sparse
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path  string
		cause error
	}{
		{fifo, wasmhost.ErrNotRegular},
		{dir, wasmhost.ErrNotRegular},
		{"/dev/zero", wasmhost.ErrNotRegular},
		{big, wasmhost.ErrModuleTooLarge},
	} {
		var err error
		within(t, 30*time.Second, "loading "+tt.path, func() {
			_, err = hooks.New(context.Background(), []config.Hook{hook("m", tt.path, hooks.ContainerCreate)}, hooks.Options{})
		})
		var le *hooks.LoadError
		if !errors.As(err, &le) || !errors.Is(err, tt.cause) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: New: %v, want a load error caused by %v", tt.path, err, tt.cause)
		}
	}
}
