//go:build !husk_nohooks

package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huskrt/husk/internal/hookconf"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/wasmhost"
)

// Engine runs the hook chains. It is safe for concurrent use; its chains
// are fixed when New or Start returns.
type Engine struct {
	host    *wasmhost.Host
	hooks   []*hook           // in config order
	chains  map[Point][]*hook // the hooks of each point: its changing hooks, then its checking hooks, each in config order
	observe func(Call)
	loading sync.WaitGroup     // the modules' loads
	cancel  context.CancelFunc // of the loads' context

	// closing is held for reading by every call and for writing by
	// Close, so that modules are never closed under a call (their compiled
	// code would be unmapped while it runs); closed is set by Close.
	closing sync.RWMutex
	closed  bool // guarded by closing
}

// hook is one configured hook.
type hook struct {
	name    string
	path    string // the module's file
	kind    hookconf.Kind
	mode    hookconf.Mode
	onError hookconf.OnError
	timeout time.Duration    // of a whole call: the module's, then reading and applying its decision
	ready   chan struct{}    // closed when the load below is done
	module  *wasmhost.Module // nil when it failed to load
	loadErr error            // why, when module is nil
	loadNow func()           // starts the load at the first call, once; nil: loading from the start
	started atomic.Bool      // the load began
}

// New checks cfg (as config.Load does, by hookconf.Validate), then loads every hook's module:
// reads the file, checks its sha256 pin, compiles it (or takes it from the
// cache) and starts an instance, handing it its config table. Errors name
// the hook and the file; a module that fails to load fails New (a
// *LoadError, errdefs.ErrNotFound or errdefs.ErrInvalidArgument) unless
// opts.TolerateLoadErrors.
//
// The Engine must be closed.
func New(ctx context.Context, cfg []hookconf.Hook, opts Options) (*Engine, error) {
	e, err := start(ctx, cfg, opts, false)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, e.cancel) // the caller giving up stops the loads
	e.loading.Wait()
	stop()
	var loadErrs []error
	for _, h := range e.hooks {
		if h.loadErr != nil {
			loadErrs = append(loadErrs, h.loadErr)
		}
	}
	if len(loadErrs) > 0 && !opts.TolerateLoadErrors {
		_ = e.Close(ctx)
		return nil, errors.Join(loadErrs...)
	}
	return e, nil
}

// Start is New with the modules loading in the background: it checks cfg
// and returns at once, and a call at a point (Run) first waits for the
// modules of that point's chain, or for its context to end. Loading a
// module costs tens of milliseconds of CPU even when its compiled code is
// cached, so a caller with other work to do before its first call (a
// sandbox being set up) overlaps the two. The module of a hook asked only
// after a container started (process.exec, container.update,
// container.delete, sandbox.delete) loads at its first call instead, so
// that a pod's first create shares no CPU with it; that call waits for
// the load (tens of milliseconds). Load errors are handled as with
// opts.TolerateLoadErrors, which Start implies: each is logged, and the
// calls of the broken hook get its on_error outcome with the error as
// cause. Only a bad cfg or cache directory fails Start.
//
// The Engine must be closed; Close waits for loads still running.
func Start(ctx context.Context, cfg []hookconf.Hook, opts Options) (*Engine, error) {
	return start(ctx, cfg, opts, true)
}

// start checks cfg, sets the engine up and starts loading its modules;
// with defer_, those of hooks asked only after a container started
// (lateOnly) wait for their first call.
func start(ctx context.Context, cfg []hookconf.Hook, opts Options, defer_ bool) (*Engine, error) {
	if err := hookconf.Validate(cfg); err != nil {
		return nil, fmt.Errorf("hooks: %w", err)
	}
	host, err := wasmhost.New(ctx, wasmhost.Config{
		CacheDir:     opts.CacheDir,
		MaxInstances: opts.MaxInstances,
		MaxOutput:    opts.MaxOutput,
		Log:          guestLog,
	})
	if err != nil {
		return nil, fmt.Errorf("hooks: %w", err)
	}
	e := &Engine{host: host, chains: make(map[Point][]*hook), observe: opts.Observe}
	for _, c := range cfg {
		h := &hook{name: c.Name, path: c.Module, kind: c.Kind, mode: c.Mode, onError: c.OnError, ready: make(chan struct{})}
		h.timeout, _ = c.Timeout.Parse() // validated above
		e.hooks = append(e.hooks, h)
	}
	// Changing hooks first, so that every checking hook sees the event as
	// the step will take it (Kubernetes admission's order: mutating, then
	// validating webhooks).
	for _, kind := range []hookconf.Kind{hookconf.Change, hookconf.Check} {
		for i, c := range cfg {
			if c.Kind != kind {
				continue
			}
			for _, p := range c.Points {
				e.chains[Point(p)] = append(e.chains[Point(p)], e.hooks[i])
			}
		}
	}
	// Loads outlive the caller's context (Start returns before they end)
	// but keep its logger; Close cancels them.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	loadHook := func(i int) {
		h := e.hooks[i]
		h.started.Store(true)
		start := time.Now()
		h.module, h.loadErr = load(lctx, host, cfg[i])
		switch {
		case h.loadErr != nil && lctx.Err() != nil:
			logging.L(lctx).Debug("hook module load stopped: engine closed", "hook", h.name, "module", h.path)
		case h.loadErr != nil:
			logging.L(lctx).Error("hook module failed to load", "hook", h.name, "module", h.path, "error", h.loadErr)
		default:
			logging.L(lctx).Debug("hook module loaded", "hook", h.name, "module", h.path, "took", time.Since(start))
		}
		close(h.ready)
	}
	// Loading a module is CPU-bound (wazero decodes and validates it even
	// when its compiled code is cached, and its runtime starts): load them
	// in parallel, one per CPU. Modules asked earlier in a pod's life load
	// first (by their first point, in Points order; then config order), so
	// that with Start a container's create waits only for the modules on
	// its path. With Start, a module asked only after a container started
	// (process.exec, container.update, container.delete, sandbox.delete)
	// loads at its first call instead: the CPU of a pod's first create is
	// not shared with modules it does not ask, and a pod that never
	// execs never loads its exec hooks.
	queue := make(chan int, len(e.hooks))
	for _, i := range loadOrder(cfg) {
		if defer_ && lateOnly(cfg[i]) {
			// Run calls it under closing's read lock, so never while Close
			// waits for the loads.
			e.hooks[i].loadNow = sync.OnceFunc(func() { e.loading.Go(func() { loadHook(i) }) })
			continue
		}
		queue <- i
	}
	close(queue)
	for range min(len(queue), max(1, runtime.GOMAXPROCS(0))) {
		e.loading.Go(func() {
			for i := range queue {
				loadHook(i)
			}
		})
	}
	return e, nil
}

// lateOnly reports whether every point of c comes after container.start
// in a pod's life (Points order).
func lateOnly(c hookconf.Hook) bool {
	order := vocab.Points()
	start := slices.Index(order, vocab.ContainerStart)
	for _, p := range c.Points {
		if slices.Index(order, p) <= start {
			return false
		}
	}
	return true
}

// loadOrder returns the indexes of cfg's hooks by their first point in a
// pod's life (Points order), ties in config order.
func loadOrder(cfg []hookconf.Hook) []int {
	order := vocab.Points()
	first := func(c hookconf.Hook) int {
		f := len(order)
		for _, p := range c.Points {
			if i := slices.Index(order, p); i >= 0 && i < f {
				f = i
			}
		}
		return f
	}
	idx := make([]int, len(cfg))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return first(cfg[a]) - first(cfg[b]) })
	return idx
}

// wait returns when h's module has loaded (or failed to), or ctx's error;
// it starts the load of a module that waited for its first call.
func (h *hook) wait(ctx context.Context) error {
	if h.loadNow != nil {
		h.loadNow()
	}
	select {
	case <-h.ready:
		return nil
	default:
	}
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for hook %q to load: %w", h.name, ctx.Err())
	}
}

// load reads, checks and loads the module of c.
func load(ctx context.Context, host *wasmhost.Host, c hookconf.Hook) (*wasmhost.Module, error) {
	fail := func(err error) error { return &LoadError{Hook: c.Name, Module: c.Module, Err: err} }
	wasm, err := wasmhost.ReadModule(c.Module, 0) // a FIFO fails, never blocks
	if err != nil {
		return nil, fail(err)
	}
	if c.SHA256 != "" {
		sum := sha256.Sum256(wasm)
		if got := hex.EncodeToString(sum[:]); got != c.SHA256 {
			return nil, fail(fmt.Errorf("%w: sha256 is %s, pinned %s", ErrDigestMismatch, got, c.SHA256))
		}
	}
	mc := wasmhost.ModuleConfig{Name: c.Name}
	// The config was validated: these conversions cannot fail.
	mc.Timeout, _ = c.Timeout.Parse()
	mc.MemoryLimitPages, _ = c.MemoryLimit.WasmPages()
	if len(c.Config) > 0 {
		if mc.Config, err = json.Marshal(c.Config); err != nil {
			return nil, fail(fmt.Errorf("config: %w", err))
		}
	}
	for _, g := range c.Grants {
		switch g {
		case hookconf.GrantClock:
			mc.Grants |= wasmhost.GrantClock
		case hookconf.GrantRandom:
			mc.Grants |= wasmhost.GrantRandom
		}
	}
	m, err := host.Load(ctx, wasm, mc)
	if err != nil {
		return nil, fail(err)
	}
	return m, nil
}

// guestLog writes a module's husk.log line to the logger of the call's
// context.
func guestLog(ctx context.Context, hook string, level slog.Level, msg string) {
	logging.L(ctx).Log(ctx, level, msg, "hook", hook, "from", "module")
}

// Hooks returns the names of the hooks asked at point, in chain order:
// the changing hooks, then the checking hooks, each in config order.
func (e *Engine) Hooks(point Point) []string {
	chain := e.chains[point]
	names := make([]string, len(chain))
	for i, h := range chain {
		names[i] = h.name
	}
	return names
}

// Close stops every module, once the calls running have returned (a module
// still loading is stopped at once); a call after Close fails with
// ErrClosed.
func (e *Engine) Close(ctx context.Context) error {
	e.cancel() // loads stop at once; a call in flight ends first
	e.closing.Lock()
	defer e.closing.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.loading.Wait()
	var errs []error
	for _, h := range e.hooks {
		if h.module != nil {
			errs = append(errs, h.module.Close(ctx))
		}
	}
	errs = append(errs, e.host.Close(ctx))
	return errors.Join(errs...)
}

// Built reports whether this build has the hook engine (a build with the
// husk_nohooks tag has not: engine_nohooks.go).
const Built = true
