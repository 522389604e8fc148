package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/wasmhost"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// newHost returns a Host closed at the end of the test.
func newHost(t *testing.T, cfg wasmhost.Config) *wasmhost.Host {
	t.Helper()
	h, err := wasmhost.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// load loads testdata/<name>.wat, closed at the end of the test.
func load(t *testing.T, h *wasmhost.Host, name string, cfg wasmhost.ModuleConfig) (*wasmhost.Module, error) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = 256 // 16 MiB
	}
	m, err := h.Load(context.Background(), wasmtest.WAT(t, "testdata/"+name+".wat"), cfg)
	if err == nil {
		t.Cleanup(func() { _ = m.Close(context.Background()) })
	}
	return m, err
}

func mustLoad(t *testing.T, h *wasmhost.Host, name string, cfg wasmhost.ModuleConfig) *wasmhost.Module {
	t.Helper()
	m, err := load(t, h, name, cfg)
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return m
}

func TestDecideReturnsTheModulesBytes(t *testing.T) {
	type line struct {
		module string
		level  slog.Level
		msg    string
	}
	var (
		mu    sync.Mutex
		lines []line
	)
	h := newHost(t, wasmhost.Config{Log: func(_ context.Context, module string, level slog.Level, msg string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line{module, level, msg})
	}})
	want := `{"allow":false,"reason":"scripted"}`
	m := mustLoad(t, h, "decision", wasmhost.ModuleConfig{Name: "scripted", Config: []byte(want)})
	for i := range 3 { // the same instance, call after call
		got, err := m.Decide(context.Background(), "container.create", []byte(`{"version":1}`))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("call %d: decision %q, want %q", i, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 3 || lines[0] != (line{"scripted", slog.LevelInfo, "container.create"}) {
		t.Errorf("logged %+v, want 3 times the point at info from module scripted", lines)
	}
}

// TestMisbehavingModules is R3 at the host level: each failure is reported
// as its kind, names the module, and the next call gets a fresh instance
// (and so the same failure, not a closed module or a hang).
func TestMisbehavingModules(t *testing.T) {
	tests := []struct {
		module  string
		kind    error
		timeout time.Duration
		msg     string // in the error
	}{
		{module: "trap", kind: wasmhost.ErrTrap, msg: "unreachable"},
		{module: "loop", kind: wasmhost.ErrTimeout, timeout: 50 * time.Millisecond, msg: "deadline exceeded (50ms)"},
		{module: "grow", kind: wasmhost.ErrTrap, msg: "out of bounds memory access"},
		{module: "badptr", kind: wasmhost.ErrABI, msg: "outside memory"},
		{module: "huge", kind: wasmhost.ErrOutput, msg: "2097152 bytes, limit 1048576"},
		{module: "alloc0", kind: wasmhost.ErrABI, msg: "husk_alloc(23) returned 0"},
	}
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			m := mustLoad(t, h, tt.module, wasmhost.ModuleConfig{Timeout: tt.timeout})
			for i := range 2 {
				start := time.Now()
				_, err := m.Decide(context.Background(), "sandbox.vm", []byte(`{"version":1}`))
				t.Logf("call %d: %v after %v", i, err, time.Since(start))
				if !errors.Is(err, tt.kind) {
					t.Fatalf("call %d: error %v, want %v", i, err, tt.kind)
				}
				var e *wasmhost.Error
				if !errors.As(err, &e) || e.Module != tt.module || e.Op != "decide" {
					t.Fatalf("call %d: error %#v does not name module %q and op decide", i, err, tt.module)
				}
				if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), fmt.Sprintf("module %q: decide: ", tt.module)) {
					t.Errorf("call %d: error %q, want it to start with the module and mention %q", i, err, tt.msg)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		module string // testdata/<module>.wat; empty: wasm is used
		wasm   []byte
		cfg    wasmhost.ModuleConfig
		kind   error
		msg    string
	}{
		{name: "not wasm", wasm: []byte("#!/bin/sh\necho allow\n"), kind: wasmhost.ErrLoad, msg: "invalid magic number"},
		{name: "missing export", module: "noexport", kind: wasmhost.ErrABI, msg: "does not export function husk_decide(i32, i32, i32, i32) -> (i64)"},
		{name: "other ABI version", module: "v2", kind: wasmhost.ErrABI, msg: "exports husk_hook_abi_v2 but not husk_hook_abi_v1"},
		{name: "unknown import", module: "badimport", kind: wasmhost.ErrABI, msg: "imports env.now, which husk does not provide"},
		{name: "mistyped export", module: "badsig", kind: wasmhost.ErrABI, msg: "exports husk_decide(i32, i32, i32, i32) -> (i32), want"},
		{name: "initial memory over the limit", module: "bigmem", cfg: wasmhost.ModuleConfig{MemoryLimitPages: 256}, kind: wasmhost.ErrLoad, msg: "512 pages (32 Mi) over limit of 256 pages (16 Mi)"},
		{name: "init rejects the config", module: "initfail", kind: wasmhost.ErrInit, msg: "init: module rejected its configuration: missing key: images"},
		{name: "config without husk_init", module: "trap", cfg: wasmhost.ModuleConfig{Config: []byte(`{"a":1}`)}, kind: wasmhost.ErrABI, msg: "does not export husk_init"},
	}
	h := newHost(t, wasmhost.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name = "m"
			var err error
			if tt.module != "" {
				_, err = load(t, h, tt.module, tt.cfg)
			} else {
				tt.cfg.Timeout, tt.cfg.MemoryLimitPages = time.Second, 16
				_, err = h.Load(context.Background(), tt.wasm, tt.cfg)
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Load: %v, want %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), `module "m": `) {
				t.Errorf("error %q, want it to name the module and mention %q", err, tt.msg)
			}
		})
	}
}

// TestMemoryLimitIsPerModule loads the same bytes (so the same compiled
// code, through the shared cache) under two limits.
func TestMemoryLimitIsPerModule(t *testing.T) {
	h := newHost(t, wasmhost.Config{})
	if _, err := load(t, h, "bigmem", wasmhost.ModuleConfig{Name: "roomy", MemoryLimitPages: 1024}); err != nil {
		t.Fatalf("64 MiB limit: %v", err)
	}
	if _, err := load(t, h, "bigmem", wasmhost.ModuleConfig{Name: "tight", MemoryLimitPages: 256}); !errors.Is(err, wasmhost.ErrLoad) {
		t.Fatalf("16 MiB limit: %v, want ErrLoad", err)
	}
}

func TestFileCache(t *testing.T) {
	dir := t.TempDir() + "/cache/wasm"
	for i := range 2 { // the second host reads what the first wrote
		h, err := wasmhost.New(context.Background(), wasmhost.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m := mustLoad(t, h, "decision", wasmhost.ModuleConfig{Config: []byte(`{"allow":true}`)})
		if _, err := m.Decide(context.Background(), "sandbox.vm", nil); err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		_ = m.Close(context.Background())
		_ = h.Close(context.Background())
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("host %d: cache dir %s: %v, %d entries", i, dir, err, len(entries))
		}
	}
}

func TestCallerCancellationIsNotTheModulesFault(t *testing.T) {
	h := newHost(t, wasmhost.Config{})
	m := mustLoad(t, h, "loop", wasmhost.ModuleConfig{Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := m.Decide(ctx, "sandbox.vm", nil)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, wasmhost.ErrTimeout) {
		t.Fatalf("error %v, want the caller's context.DeadlineExceeded and not the module's ErrTimeout", err)
	}
}

func TestClosedModule(t *testing.T) {
	h := newHost(t, wasmhost.Config{})
	m := mustLoad(t, h, "decision", wasmhost.ModuleConfig{Config: []byte(`{"allow":true}`)})
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decide(context.Background(), "sandbox.vm", nil); !errors.Is(err, wasmhost.ErrClosed) {
		t.Fatalf("Decide after Close: %v, want ErrClosed", err)
	}
}

// TestHammer runs P goroutines × N calls on a module with fewer instances
// than goroutines, mixing in a failing module on the same host.
func TestHammer(t *testing.T) {
	const P, N = 8, 200
	h := newHost(t, wasmhost.Config{MaxInstances: 3})
	good := mustLoad(t, h, "decision", wasmhost.ModuleConfig{Config: []byte(`{"allow":true}`)})
	bad := mustLoad(t, h, "trap", wasmhost.ModuleConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, P)
	for p := range P {
		wg.Go(func() {
			for i := range N {
				event := fmt.Appendf(nil, `{"version":1,"n":%d}`, p*N+i)
				got, err := good.Decide(context.Background(), "container.create", event)
				if err != nil || string(got) != `{"allow":true}` {
					errs <- fmt.Errorf("goroutine %d call %d: %q, %v", p, i, got, err)
					return
				}
				if i%20 == 0 {
					if _, err := bad.Decide(context.Background(), "container.create", event); !errors.Is(err, wasmhost.ErrTrap) {
						errs <- fmt.Errorf("goroutine %d: trap module: %v", p, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestFailedInstanceIsReplaced: after a call fails (and its instance is
// closed or in an unknown state), the next call on the same module runs on
// a fresh instance and works.
func TestFailedInstanceIsReplaced(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	m := mustLoad(t, h, "sometimes", wasmhost.ModuleConfig{Timeout: 50 * time.Millisecond})
	for _, tt := range []struct {
		point string
		kind  error
	}{{"loop", wasmhost.ErrTimeout}, {"trap", wasmhost.ErrTrap}, {"grow", wasmhost.ErrTrap}} {
		if _, err := m.Decide(context.Background(), tt.point, nil); !errors.Is(err, tt.kind) {
			t.Fatalf("%s: %v, want %v", tt.point, err, tt.kind)
		}
		if got, err := m.Decide(context.Background(), "container.create", nil); err != nil || string(got) != `{"allow":true}` {
			t.Fatalf("the call after %s: %q, %v", tt.point, got, err)
		}
	}
}

// TestConcurrentLoadsOfOneModule: hooks sharing a module file load at the
// same time, from a warm file cache (wazero 1.12 would hand the second a
// half-built module and panic), and each answers.
func TestConcurrentLoadsOfOneModule(t *testing.T) {
	dir := t.TempDir()
	wasm := wasmtest.WAT(t, "testdata/decision.wat")
	cfg := wasmhost.ModuleConfig{Name: "d", Timeout: time.Second, MemoryLimitPages: 256, Config: []byte(`{"allow":true}`)}
	warm := newHost(t, wasmhost.Config{CacheDir: dir})
	if _, err := warm.Load(context.Background(), wasm, cfg); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		h := newHost(t, wasmhost.Config{CacheDir: dir})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				m, err := h.Load(context.Background(), wasm, cfg)
				if err != nil {
					t.Error(err)
					return
				}
				defer m.Close(context.Background())
				if out, err := m.Decide(context.Background(), "container.create", []byte(`{}`)); err != nil || string(out) != `{"allow":true}` {
					t.Errorf("Decide: %s, %v", out, err)
				}
			})
		}
		wg.Wait()
	}
}
