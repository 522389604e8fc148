package wasmhost

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
)

// DefaultCacheDir is where shims share compiled modules.
const DefaultCacheDir = "/var/cache/husk/wasm"

// Defaults for the zero values of Config.
const (
	DefaultMaxOutput      = 1 << 20
	DefaultInitTimeout    = 5 * time.Second
	DefaultCompileTimeout = 30 * time.Second
)

// compileWorkers is how many goroutines compile one module's functions.
// wazero checks for cancellation between functions only when it compiles
// with more than one, so this is what makes CompileTimeout stop a
// compilation rather than wait for its end.
const compileWorkers = 2

// Config configures a Host. It is copied by New; the zero value is usable.
type Config struct {
	// CacheDir, when set, keeps compiled modules in files under this
	// directory (created 0700 if missing), keyed by module content and
	// wazero version, for every process that uses it. Empty: compiled code
	// lives in memory until the Host is closed.
	CacheDir string
	// MaxInstances bounds the instances of one module, and so the calls
	// into it that run at once (more wait). 0: max(2, GOMAXPROCS).
	MaxInstances int
	// MaxOutput bounds the size of one decision, in bytes.
	// 0: DefaultMaxOutput.
	MaxOutput int
	// InitTimeout bounds starting one instance: instantiation, _initialize
	// and husk_init. 0: DefaultInitTimeout.
	InitTimeout time.Duration
	// CompileTimeout bounds compiling one module (once per machine with a
	// CacheDir): a Go module takes 0.5–3 s of CPU. A compilation past it
	// stops at the next function and the load fails with ErrTimeout.
	// 0: DefaultCompileTimeout.
	CompileTimeout time.Duration
	// Log receives what modules write through husk.log (at most
	// maxLogLines lines of maxLogBytes per call). nil: discarded. ctx is
	// the context of the Decide call (or of Load, for husk_init).
	Log func(ctx context.Context, module string, level slog.Level, msg string)
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.MaxInstances <= 0 {
		c.MaxInstances = max(2, runtime.GOMAXPROCS(0))
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = DefaultMaxOutput
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.CompileTimeout <= 0 {
		c.CompileTimeout = DefaultCompileTimeout
	}
	return c
}

// Host loads hook modules. It is safe for concurrent use.
type Host struct {
	cfg   Config
	cache wazero.CompilationCache

	seed      maphash.Seed
	mu        sync.Mutex
	compiling map[uint64]*sync.Mutex // by module content; guarded by mu
}

// compileLock serializes compiling the same module content in h, and
// returns the unlock. wazero 1.12, taking a module from the file cache,
// publishes it to the other runtimes sharing the cache before it has built
// its entry preambles: a second Load of the same bytes at that moment
// instantiates a half-built module and panics (index out of range in
// moduleEngine.NewFunction). Once the first compile is done, the others
// take the module from memory at no cost.
func (h *Host) compileLock(wasm []byte) func() {
	k := maphash.Bytes(h.seed, wasm)
	h.mu.Lock()
	l, ok := h.compiling[k]
	if !ok {
		l = new(sync.Mutex)
		h.compiling[k] = l
	}
	h.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// New returns a Host configured by cfg. Close it after the modules it
// loaded.
func New(ctx context.Context, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	var cache wazero.CompilationCache
	if cfg.CacheDir == "" {
		cache = wazero.NewCompilationCache()
	} else {
		// wazero creates the directory 0700 if missing; create it here so
		// that the error names it and parents are made too.
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("wasm compilation cache: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	}
	return &Host{cfg: cfg, cache: cache, seed: maphash.MakeSeed(), compiling: map[uint64]*sync.Mutex{}}, nil
}

// Close releases the compilation cache's memory (its files stay). Modules
// loaded by h must be closed first.
func (h *Host) Close(ctx context.Context) error {
	return h.cache.Close(ctx)
}

// runtimeConfig is the wazero configuration of a module's runtime: shared
// compiled code, calls stopped at their context's deadline, and the
// module's own memory limit.
func (h *Host) runtimeConfig(memoryLimitPages uint32) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(memoryLimitPages)
}
