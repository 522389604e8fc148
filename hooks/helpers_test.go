//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// moduleDir holds the modules the tests build, for the whole test process.
var moduleDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "husk-hooks-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moduleDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// watModule compiles ../wasmhost/testdata/<name>.wat and returns the
// module's path.
func watModule(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(moduleDir, "wat-"+name+".wasm")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	wasm := wasmtest.WAT(tb, filepath.Join("..", "wasmhost", "testdata", name+".wat"))
	if err := os.WriteFile(path, wasm, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

var (
	goMu    sync.Mutex
	goBuilt = map[string]string{} // package dir → module path; guarded by goMu
)

// goModule builds the Go policy in dir (relative to this package) once per
// test process and returns the module's path.
func goModule(tb testing.TB, dir string) string {
	tb.Helper()
	goMu.Lock()
	defer goMu.Unlock()
	if p, ok := goBuilt[dir]; ok {
		return p
	}
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skip("the go command is needed to build Go policies")
	}
	out := filepath.Join(moduleDir, "go-"+strings.ReplaceAll(dir, "/", "_")+".wasm")
	if err := build.Go(context.Background(), dir, out); err != nil {
		tb.Fatal(err)
	}
	goBuilt[dir] = out
	return out
}

// hook returns a complete hook config.
func hook(name, module string, points ...hooks.Point) config.Hook {
	h := config.Hook{Name: name, Module: module}
	for _, p := range points {
		h.Points = append(h.Points, string(p))
	}
	return h.WithDefaults()
}

// scripted returns a hook running decision.wat, whose decision is the JSON
// of decision: a changing hook when the decision has a patch, else a
// checking one.
func scripted(tb testing.TB, name, decision string, points ...hooks.Point) config.Hook {
	tb.Helper()
	h := hook(name, watModule(tb, "decision"), points...)
	if strings.Contains(decision, `"patch"`) {
		h.Kind = config.HookChange
	}
	if err := json.Unmarshal([]byte(decision), &h.Config); err != nil {
		tb.Fatalf("decision %s: %v", decision, err)
	}
	return h
}

// cacheDir is the compilation cache the tests share.
func cacheDir() string { return filepath.Join(moduleDir, "cache") }

// newEngine returns an engine closed at the end of the test. Unless opts
// says otherwise, engines share a file cache, so that each module is
// compiled once per test process.
func newEngine(tb testing.TB, cfg []config.Hook, opts hooks.Options) *hooks.Engine {
	tb.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = cacheDir()
	}
	e, err := hooks.New(context.Background(), cfg, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// logRecorder keeps the log records written through its context.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record // guarded by mu
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// ctx returns a context logging to r.
func (r *logRecorder) ctx() context.Context {
	return logging.WithLogger(context.Background(), slog.New(r))
}

// find returns the attributes of the first record with message msg.
func (r *logRecorder) find(msg string) (map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]string{"level": rec.Level.String()}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		return attrs, true
	}
	return nil, false
}
