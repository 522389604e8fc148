// Package moduletest runs a built-in policy's module in husk's Wasm host
// (wasmhost), as the shim does, for the policies' own tests: each test
// builds the policy of its directory (C or Go, policies/build) and asks
// it with raw JSON events, so that the cases that once called a Go
// decide function natively now exercise the module husk ships.
package moduletest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/wasmhost"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{} // abs dir → module; guarded by mu
)

// Module builds the policy in dir once per test process and returns the
// module's bytes. It skips the test when the compiler is missing.
func Module(tb testing.TB, dir string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[abs]; ok {
		return b
	}
	tool := "go"
	if build.IsC(abs) {
		tool = "clang"
	}
	if _, err := exec.LookPath(tool); err != nil {
		tb.Skipf("%s is needed to build the policy in %s (hack/install-tools.sh)", tool, dir)
	}
	out := filepath.Join(tb.TempDir(), "policy.wasm")
	if err := build.Go(context.Background(), abs, out); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	built[abs] = b
	return b
}

// Policy is a loaded module and the log lines it wrote.
type Policy struct {
	m    *wasmhost.Module
	mu   sync.Mutex
	logs []Line
}

// Line is one line a module logged.
type Line struct {
	Level slog.Level
	Msg   string
}

// Load builds the policy in dir and loads it with config (JSON text; ""
// for none). The error is Load's: a config the policy refuses fails here.
func Load(tb testing.TB, dir, config string) (*Policy, error) {
	tb.Helper()
	wasm := Module(tb, dir)
	p := &Policy{}
	h, err := wasmhost.New(context.Background(), wasmhost.Config{
		Log: func(_ context.Context, _ string, l slog.Level, msg string) {
			p.mu.Lock()
			p.logs = append(p.logs, Line{l, msg})
			p.mu.Unlock()
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close(context.Background()) })
	cfg := wasmhost.ModuleConfig{Name: filepath.Base(dir), Timeout: 5 * time.Second, MemoryLimitPages: 1024}
	if config != "" {
		cfg.Config = []byte(config)
	}
	m, err := h.Load(context.Background(), wasm, cfg)
	if err != nil {
		return nil, err
	}
	p.m = m
	return p, nil
}

// MustLoad is Load that fails the test on an error.
func MustLoad(tb testing.TB, dir, config string) *Policy {
	tb.Helper()
	p, err := Load(tb, dir, config)
	if err != nil {
		tb.Fatalf("load %s with config %s: %v", dir, config, err)
	}
	return p
}

// Decision is a module's answer, as the ABI defines it.
type Decision struct {
	Allow  bool            `json:"allow"`
	Reason string          `json:"reason,omitempty"`
	Patch  json.RawMessage `json:"patch,omitempty"`
}

// Denied returns the reason of a denial, and "" for an allowing decision
// (whose reason the tests do not expect).
func (d Decision) Denied() string {
	if d.Allow {
		return ""
	}
	return d.Reason
}

// PatchJSON returns the patch compacted, "" for none.
func (d Decision) PatchJSON() string {
	if len(d.Patch) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, d.Patch); err != nil {
		return string(d.Patch)
	}
	return b.String()
}

// Decide asks the module about event at point and decodes its decision
// strictly (unknown members fail the test, as husk refuses them).
func (p *Policy) Decide(tb testing.TB, point, event string) Decision {
	tb.Helper()
	out, err := p.m.Decide(context.Background(), point, []byte(event))
	if err != nil {
		tb.Fatalf("decide %s %s: %v", point, event, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	var d Decision
	if err := dec.Decode(&d); err != nil || dec.More() {
		tb.Fatalf("decide %s: not a decision: %q (%v)", point, out, err)
	}
	if !strings.HasPrefix(string(out), `{"allow":`) {
		tb.Fatalf("decide %s: decision %q does not start with allow", point, out)
	}
	return d
}

// Raw asks the module and returns its output and error, unchecked.
func (p *Policy) Raw(point string, event []byte) ([]byte, error) {
	return p.m.Decide(context.Background(), point, event)
}

// Logs returns the lines logged so far and forgets them.
func (p *Policy) Logs() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.logs
	p.logs = nil
	return l
}
