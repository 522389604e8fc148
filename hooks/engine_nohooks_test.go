//go:build husk_nohooks

package hooks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/hookconf"
)

// In a build without the hook engine, a configuration with hooks is
// refused by name (never skipped), one without hooks runs: every point
// allows, unknown points and closed engines fail as in the full build.
func TestNoHookEngine(t *testing.T) {
	ctx := context.Background()
	if Built {
		t.Fatal("Built is true in a husk_nohooks build")
	}
	cfg := []hookconf.Hook{{Name: "deny-privileged", Module: "/nonexistent.wasm", Points: []string{string(ContainerCreate)}}}
	for i := range cfg {
		cfg[i] = cfg[i].WithDefaults()
	}
	for name, start := range map[string]func(context.Context, []hookconf.Hook, Options) (*Engine, error){"New": New, "Start": Start} {
		_, err := start(ctx, cfg, Options{})
		if !errors.Is(err, ErrNotInBuild) || !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "deny-privileged") {
			t.Errorf("%s with a hook: %v, want ErrNotInBuild naming the hook", name, err)
		}
	}
	e, err := Start(ctx, nil, Options{})
	if err != nil {
		t.Fatalf("Start without hooks: %v", err)
	}
	out, err := e.Run(ctx, ContainerCreate, []byte(`{}`))
	if err != nil || !out.Allowed || out.Point != ContainerCreate {
		t.Errorf("Run: %+v, %v; want allowed", out, err)
	}
	if _, err := e.Run(ctx, Point("container.nonsense"), nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Run at an unknown point: %v", err)
	}
	if e.Checks(ContainerCreate) || len(e.Hooks(ContainerCreate)) != 0 {
		t.Error("an engine without hooks reports hooks")
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, ContainerCreate, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}
