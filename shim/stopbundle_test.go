package shim

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/shim"
)

// TestStopBundle: delete's bundle is containerd's -bundle when given (the
// working directory may be gone), else the working directory; with
// neither, an error that says so.
func TestStopBundle(t *testing.T) {
	ctx := context.WithValue(context.Background(), shim.OptsKey{}, shim.Opts{BundlePath: "/run/x/bundle"})
	if b, err := stopBundle(ctx); err != nil || b != "/run/x/bundle" {
		t.Errorf("with -bundle: %q, %v", b, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := stopBundle(context.Background()); err != nil || b != wd {
		t.Errorf("without -bundle: %q, %v; want %q", b, err, wd)
	}
	gone := t.TempDir()
	t.Chdir(gone)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := stopBundle(context.Background()); err == nil || !strings.Contains(err.Error(), "no -bundle and no working directory") {
		t.Errorf("neither: %v", err)
	}
}
