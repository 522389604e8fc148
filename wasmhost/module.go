package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/huskrt/husk/internal/wazerowasi"
)

// Grants are what a module may use beyond pure computation.
type Grants uint8

// The grants.
const (
	// GrantClock gives the module the host's wall and monotonic clocks and
	// a real sleep. Without it both clocks are fake (they advance 1ms per
	// reading) and sleep returns at once.
	GrantClock Grants = 1 << iota
	// GrantRandom gives the module random bytes from crypto/rand. Without
	// it they come from a deterministic source.
	GrantRandom
)

// ModuleConfig configures one loaded module.
type ModuleConfig struct {
	// Name identifies the module in errors and logs.
	Name string
	// Timeout bounds one Decide call, including the wait for a free
	// instance. Required.
	Timeout time.Duration
	// MemoryLimitPages bounds the module's memory in 64 KiB pages
	// (1..65536). Required.
	MemoryLimitPages uint32
	// Grants: none unless listed.
	Grants Grants
	// Config is handed to husk_init, once per instance: the JSON text of an
	// object. nil: "{}". A module that does not export husk_init may only
	// be given an empty configuration.
	Config []byte
}

// Module is a loaded hook module. It is safe for concurrent use.
type Module struct {
	host     *Host
	cfg      ModuleConfig
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	base     wazero.ModuleConfig // per instance: WithStdout/WithStderr added
	hasInit  bool
	pool     pool
	closed   atomic.Bool
}

// Load checks wasm against the hook ABI, compiles it (or takes it from the
// compilation cache) and starts one instance, so that a module that cannot
// start fails here. Every error is an *Error with Op "load" or "init".
func (h *Host) Load(ctx context.Context, wasm []byte, cfg ModuleConfig) (*Module, error) {
	if cfg.Timeout <= 0 || cfg.MemoryLimitPages == 0 || cfg.MemoryLimitPages > 65536 {
		return nil, errorf(cfg.Name, "load", ErrLoad, "invalid module config: timeout %s, memory limit %d pages", cfg.Timeout, cfg.MemoryLimitPages)
	}
	if cfg.Config == nil {
		cfg.Config = []byte("{}")
	}
	// Definitions and tables are host memory the memory limit does not
	// cover: bound them before wazero sees the module. The call stack is
	// host memory too: count it.
	wasm, err := h.prepare(wasm)
	if err != nil {
		return nil, &Error{Module: cfg.Name, Op: "load", Kind: ErrLoad, Err: err}
	}
	m := &Module{host: h, cfg: cfg}
	m.rt = wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig(cfg.MemoryLimitPages))
	if err := m.load(ctx, wasm); err != nil {
		_ = m.rt.Close(ctx)
		return nil, err
	}
	m.pool.init(h.cfg.MaxInstances, m.newInstance)
	// Start the first instance now: _initialize and husk_init run here, and
	// the first call does not pay for them.
	in, err := m.pool.get(ctx, time.Now().Add(h.cfg.InitTimeout))
	if err != nil {
		_ = m.rt.Close(ctx)
		return nil, err
	}
	m.pool.put(in)
	return m, nil
}

// load compiles wasm into m and instantiates the host modules it may import.
func (m *Module) load(ctx context.Context, wasm []byte) error {
	unlock := m.host.compileLock(wasm)
	cctx, cancel := context.WithTimeout(experimental.WithCompilationWorkers(ctx, compileWorkers), m.host.cfg.CompileTimeout)
	compiled, err := compileModule(cctx, m.rt, wasm)
	late := cctx.Err() != nil && ctx.Err() == nil
	cancel()
	unlock()
	switch {
	case err != nil && late:
		return &Error{Module: m.cfg.Name, Op: "load", Kind: ErrTimeout, Limit: m.host.cfg.CompileTimeout,
			Err: errors.New("compiling the module took too long")}
	case err != nil:
		return &Error{Module: m.cfg.Name, Op: "load", Kind: ErrLoad, Err: err}
	}
	m.compiled = compiled
	if m.hasInit, err = checkABI(compiled); err != nil {
		return &Error{Module: m.cfg.Name, Op: "load", Kind: ErrABI, Err: err}
	}
	if !m.hasInit && string(m.cfg.Config) != "{}" {
		return errorf(m.cfg.Name, "load", ErrABI, "has a configuration but does not export %s to receive it", ExportInit)
	}
	if err := instantiateWASI(ctx, m.rt, wazerowasi.Imports(compiled)); err != nil {
		return &Error{Module: m.cfg.Name, Op: "load", Kind: ErrLoad, Err: fmt.Errorf("WASI: %w", err)}
	}
	if err := m.instantiateHost(ctx, compiled); err != nil {
		return &Error{Module: m.cfg.Name, Op: "load", Kind: ErrLoad, Err: fmt.Errorf("host functions: %w", err)}
	}

	// No args, environment, filesystem or network: wazero grants none of
	// them unless asked. Anonymous (empty name), so that instances of the
	// same module can coexist.
	base := wazero.NewModuleConfig().WithName("").WithStartFunctions(initialize)
	if m.cfg.Grants&GrantClock != 0 {
		// The sleep is the instance's own (newInstance): real, but ended
		// by the call's deadline.
		base = base.WithSysWalltime().WithSysNanotime()
	}
	m.base = base
	return nil
}

// instantiateHost instantiates, in m's runtime, husk's host functions that
// compiled imports (checkABI checked their types), none when it imports
// none: like WASI's (instantiateWASI), each costs a trampoline per load.
func (m *Module) instantiateHost(ctx context.Context, compiled wazero.CompiledModule) error {
	b := m.rt.NewHostModuleBuilder(ImportModule)
	done := map[string]bool{}
	for _, def := range compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		f, ok := hostFunctions[name]
		if mod != ImportModule || !ok || done[name] {
			continue
		}
		done[name] = true
		fn := f.fn
		if name == ImportLog {
			fn = m.hostLog // it logs with the module's name
		}
		b = b.NewFunctionBuilder().
			WithGoModuleFunction(fn, f.sig.params, f.sig.results).
			WithParameterNames(f.arg...).
			Export(name)
	}
	if len(done) == 0 {
		return nil
	}
	_, err := b.Instantiate(ctx)
	return err
}

// compileModule compiles wasm in rt, turning a panic of wazero's decoder
// into an error: a 33-byte module whose local declarations ran past its
// function body made wazero panic (makeslice: len out of range), which
// would have ended the shim. (Functions are compiled on wazero's worker
// goroutines, where nothing of husk's can recover; decoding happens here.)
func compileModule(ctx context.Context, rt wazero.Runtime, wasm []byte) (_ wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wazero failed decoding the module: %v", r)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}

// Name returns the module's name.
func (m *Module) Name() string { return m.cfg.Name }

// Decide runs husk_decide on one instance with point and event (the JSON
// text of the event) and returns a copy of the decision bytes, unparsed.
// The call, including the wait for a free instance, ends by the module's
// Timeout. Errors are *Error with Op "decide" (or "init" when a new
// instance failed to start); a failed instance is discarded.
//
// If ctx ends first, the error is ctx's error, not the module's fault.
func (m *Module) Decide(ctx context.Context, point string, event []byte) ([]byte, error) {
	if m.closed.Load() {
		return nil, &Error{Module: m.cfg.Name, Op: "decide", Kind: ErrClosed}
	}
	deadline := time.Now().Add(m.cfg.Timeout)
	in, err := m.pool.get(ctx, deadline)
	if err != nil {
		return nil, m.callError(ctx, "decide", err)
	}
	out, reusable, err := in.decide(ctx, deadline, point, event)
	switch {
	case err != nil:
		m.pool.discard(in)
		return nil, m.callError(ctx, "decide", err)
	case !reusable:
		m.pool.discard(in)
	default:
		m.pool.put(in)
	}
	return out, nil
}

// callError turns an error from waiting for or calling an instance into
// the error Decide returns.
func (m *Module) callError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		// The caller gave up (or its own deadline passed): not the module's
		// doing.
		return fmt.Errorf("module %q: %s: %w", m.cfg.Name, op, ctx.Err())
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == ErrTimeout {
			e.Limit = m.cfg.Timeout
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Module: m.cfg.Name, Op: op, Kind: ErrTimeout, Limit: m.cfg.Timeout,
			Err: errors.New("no instance became free in time")}
	}
	return &Error{Module: m.cfg.Name, Op: op, Kind: ErrTrap, Err: err}
}

// Close stops the module's instances; calls in progress fail with an error.
func (m *Module) Close(ctx context.Context) error {
	m.closed.Store(true)
	m.pool.close()
	return m.rt.Close(ctx)
}
