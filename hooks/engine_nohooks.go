//go:build husk_nohooks

package hooks

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/hookconf"
)

// Built reports whether this build has the hook engine: not in a build with
// the husk_nohooks tag (make build VARIANT=nohooks), which leaves the Wasm
// host, and wazero with it, out of the shim and huskctl.
const Built = false

// Engine, in a build without the hook engine, runs no hooks: every point
// allows. New and Start refuse a configuration that has hooks, so no
// policy an operator configured is ever skipped silently.
type Engine struct {
	closed atomic.Bool
}

// New checks cfg, then refuses it if it has any hook: this build cannot run
// them (ErrNotInBuild, errdefs.ErrNotImplemented).
func New(ctx context.Context, cfg []hookconf.Hook, opts Options) (*Engine, error) {
	return start(ctx, cfg, opts)
}

// Start is New: there is nothing to load in the background.
func Start(ctx context.Context, cfg []hookconf.Hook, opts Options) (*Engine, error) {
	return start(ctx, cfg, opts)
}

func start(_ context.Context, cfg []hookconf.Hook, _ Options) (*Engine, error) {
	if err := hookconf.Validate(cfg); err != nil {
		return nil, fmt.Errorf("hooks: %w", err)
	}
	if len(cfg) > 0 {
		names := make([]string, len(cfg))
		for i, h := range cfg {
			names[i] = h.Name
		}
		return nil, fmt.Errorf("hooks: %d configured (%q) but %w: %w; remove the [[hook]] tables or install the full build",
			len(cfg), names, ErrNotInBuild, errdefs.ErrNotImplemented)
	}
	return &Engine{}, nil
}

// Run allows: no hook is configured at any point.
func (e *Engine) Run(_ context.Context, point Point, _ any) (Outcome, error) {
	return e.run(point)
}

// Recheck allows: no hook is configured at any point.
func (e *Engine) Recheck(_ context.Context, point Point, _ any, after Point) (Outcome, error) {
	if !after.Valid() {
		return Outcome{Point: point}, fmt.Errorf("hooks: recheck of %s after unknown point %q: %w", point, after, errdefs.ErrInvalidArgument)
	}
	return e.run(point)
}

func (e *Engine) run(point Point) (Outcome, error) {
	if !point.Valid() {
		return Outcome{Point: point}, fmt.Errorf("hooks: unknown point %q: %w", point, errdefs.ErrInvalidArgument)
	}
	if e.closed.Load() {
		return Outcome{Point: point}, fmt.Errorf("hooks: %s: %w", point, ErrClosed)
	}
	return Outcome{Point: point, Allowed: true}, nil
}

// Checks reports that no point has checking hooks.
func (e *Engine) Checks(Point) bool { return false }

// Hooks returns no names: no point has hooks.
func (e *Engine) Hooks(Point) []string { return nil }

// Close makes later calls fail with ErrClosed.
func (e *Engine) Close(context.Context) error {
	e.closed.Store(true)
	return nil
}
