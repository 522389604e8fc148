package hooks

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/containerd/errdefs"
)

// This file holds what callers of an Engine see in every build; the engine
// itself (engine.go, run.go) is left out by the husk_nohooks build tag
// (make build VARIANT=nohooks), which puts engine_nohooks.go in its place.

// DefaultCacheDir is where shims share compiled modules (the Wasm host's
// wasmhost.DefaultCacheDir: a test checks they agree).
const DefaultCacheDir = "/var/cache/husk/wasm"

// Options configures an Engine beyond its hooks. The zero value is usable.
type Options struct {
	// CacheDir keeps compiled modules in files under this directory, shared
	// by every process using it (the shim passes DefaultCacheDir). Empty:
	// compiled code is kept in memory only.
	CacheDir string
	// MaxInstances bounds the instances of each module, and so the calls
	// into one module that run at once. 0: max(2, GOMAXPROCS).
	MaxInstances int
	// MaxOutput bounds a decision's size in bytes. 0: 1 MiB.
	MaxOutput int
	// TolerateLoadErrors makes New succeed when modules fail to load: each
	// failure is logged, and every call at a broken hook's points gets its
	// on_error outcome with the load error as cause (so a shim keeps
	// serving, and fails closed where the operator asked). Without it New
	// fails with every load error.
	TolerateLoadErrors bool
	// Observe, when set, is called after every hook call (concurrently, from
	// Run's goroutines), e.g. to feed metrics.
	Observe func(Call)
}

// Call describes one hook call, for Options.Observe.
type Call struct {
	Hook     string
	Point    Point
	Result   Result
	Duration time.Duration
}

// Result is what a hook call gave, whatever the hook's mode.
type Result string

// The results of a hook call.
const (
	ResultAllow Result = "allow"
	ResultPatch Result = "patch" // allowed with a patch that applied
	ResultDeny  Result = "deny"
	ResultError Result = "error" // the module failed; on_error decided
)

// LoadError is a hook whose module could not be loaded.
type LoadError struct {
	Hook   string
	Module string // the file
	Err    error
}

// Error names the hook and the file.
func (e *LoadError) Error() string {
	return fmt.Sprintf("hook %q: module %s: %v", e.Hook, e.Module, e.Err)
}

// Unwrap returns the cause and its class: errdefs.ErrNotFound for a
// missing file, errdefs.ErrInvalidArgument otherwise.
func (e *LoadError) Unwrap() []error {
	if errors.Is(e.Err, fs.ErrNotExist) {
		return []error{e.Err, errdefs.ErrNotFound}
	}
	return []error{e.Err, errdefs.ErrInvalidArgument}
}

// ErrDigestMismatch is the cause of a module whose content does not match
// its sha256 pin.
var ErrDigestMismatch = errors.New("module does not match its sha256 pin")

// ErrClosed is a call to an engine that was closed (its sandbox is gone).
var ErrClosed = fmt.Errorf("hook engine closed: %w", errdefs.ErrUnavailable)

// ErrBadPatch is the cause of a patch that cannot be applied (a path that
// does not exist, a failed test) or whose result does not fit the event's
// schema.
var ErrBadPatch = errors.New("bad patch")

// ErrCheckPatched is the cause of a checking hook's failure by answering
// with a patch: a checking hook (kind = "check") may allow or deny, never
// change the step, since the hooks after it would not see its change.
var ErrCheckPatched = errors.New(`a checking hook may not patch (kind = "check"; a hook that changes steps is kind = "change")`)

// ErrNotInBuild is what an engine asked to run hooks answers in a build
// without the hook engine.
var ErrNotInBuild = errors.New("the hook engine is not in this build (make build VARIANT=nohooks leaves it out)")
