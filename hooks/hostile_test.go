//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/wasmhost"
)

// within runs f and fails the test if it has not returned after limit (a
// hang, not slowness: limit is generous).
func within(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s still running after %v", what, limit)
	}
}

// TestModuleFileMustBeRegular: a FIFO, a directory or a device given as a
// module fails its load at once (opening a FIFO for reading would wait for
// a writer forever), and so does a file over the size limit, before it is
// read.
func TestModuleFileMustBeRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "policy.wasm")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.wasm")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, wasmhost.DefaultMaxModuleSize+1); err != nil { // sparse
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path  string
		cause error
	}{
		{fifo, wasmhost.ErrNotRegular},
		{dir, wasmhost.ErrNotRegular},
		{"/dev/zero", wasmhost.ErrNotRegular},
		{big, wasmhost.ErrModuleTooLarge},
	} {
		var err error
		within(t, 30*time.Second, "loading "+tt.path, func() {
			_, err = hooks.New(context.Background(), []config.Hook{hook("m", tt.path, hooks.ContainerCreate)}, hooks.Options{})
		})
		var le *hooks.LoadError
		if !errors.As(err, &le) || !errors.Is(err, tt.cause) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: New: %v, want a load error caused by %v", tt.path, err, tt.cause)
		}
	}
}

// TestCopyBudgetCountsBytes: copy operations that duplicate a large string
// over and over (a 140 KB decision that would make a 64 MB event: 591 MiB
// of host memory and 5 s before the budget counted bytes) fail once they
// have duplicated 1 MiB.
func TestCopyBudgetCountsBytes(t *testing.T) {
	ops := []hooks.Op{{Op: "add", Path: "/env/-", Value: json.RawMessage(`"` + strings.Repeat("x", 100<<10) + `"`)}}
	for range 640 {
		ops = append(ops, hooks.Op{Op: "copy", From: "/env/0", Path: "/env/-"})
	}
	out, err := hooks.ApplyPatch([]byte(`{"env":[]}`), ops)
	if err == nil || !strings.Contains(err.Error(), "duplicate too much") {
		t.Fatalf("ApplyPatch: %d bytes, %v; want the copy budget exceeded", len(out), err)
	}
	// Under the budget, copies work.
	out, err = hooks.ApplyPatch([]byte(`{"env":["A=1"]}`), []hooks.Op{{Op: "copy", From: "/env/0", Path: "/env/-"}})
	if err != nil || string(out) != `{"env":["A=1","A=1"]}` {
		t.Fatalf("one copy: %s, %v", out, err)
	}
}

// TestTestOnHugeNumbers: test compares integers by their text, so a
// million-digit number costs its length, not seconds of CPU (big.Int
// parsing took 3 s for one million digits, and grows with the square).
func TestTestOnHugeNumbers(t *testing.T) {
	huge := "9" + strings.Repeat("0", 3_000_000)
	for _, tt := range []struct {
		doc, value string
		equal      bool
	}{
		{`{"n":1}`, huge, false},
		{`{"n":` + huge + `}`, huge, true},
		{`{"n":-0}`, "0", true},
		{`{"n":18446744073709551615}`, "18446744073709551615", true},
		{`{"n":18446744073709551615}`, "18446744073709551614", false},
		{`{"n":100}`, "1e2", true},
	} {
		var err error
		within(t, 10*time.Second, "a test of a 3-million-digit number", func() {
			_, err = hooks.ApplyPatch([]byte(tt.doc), []hooks.Op{{Op: "test", Path: "/n", Value: json.RawMessage(tt.value)}})
		})
		if (err == nil) != tt.equal {
			t.Errorf("test %.20s against %.20s: %v, want equal %v", tt.doc, tt.value, err, tt.equal)
		}
	}
}

// TestDeadlineCoversDecisionAndPatch: a module that answers in time with
// a decision that costs husk more than the hook's timeout to read and
// apply (here a 900 KB patch of 1000 tests, tens of milliseconds, under a
// 5 ms timeout) fails with a timeout instead of making husk work past its
// deadline.
func TestDeadlineCoversDecisionAndPatch(t *testing.T) {
	args := make([]any, 90)
	for i := range args {
		args[i] = fmt.Sprintf("arg-%04d", i)
	}
	ops := make([]any, 0, 1001)
	for range 1000 {
		ops = append(ops, map[string]any{"op": "test", "path": "/process/args", "value": args})
	}
	ops = append(ops, map[string]any{"op": "add", "path": "/process/env/-", "value": "PATCHED=1"})
	decision, err := json.Marshal(map[string]any{"allow": true, "patch": ops})
	if err != nil {
		t.Fatal(err)
	}
	h := scripted(t, "slow-patch", string(decision), hooks.ContainerStart)
	h.Timeout = "5ms"
	e := newEngine(t, []config.Hook{h}, hooks.Options{})
	ev := &hooks.ContainerStartEvent{Process: hooks.Process{User: hooks.User{UID: 1000, GID: 1000}}}
	for _, a := range args {
		ev.Process.Args = append(ev.Process.Args, a.(string))
	}
	out, err := e.Run(context.Background(), hooks.ContainerStart, ev)
	t.Logf("decision of %d bytes: %+v", len(decision), out.Cause)
	if err != nil || out.Allowed || !errors.Is(out.Cause, wasmhost.ErrTimeout) {
		t.Fatalf("Run: allowed %v, cause %v, %v; want denied by a timeout", out.Allowed, out.Cause, err)
	}
}

// TestDocsStateTheResourceModel keeps §8 of docs/hooks.md, what a module
// can cost the host, in step with the bounds in the code.
func TestDocsStateTheResourceModel(t *testing.T) {
	doc, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, model, ok := strings.Cut(string(doc), "## 8. What a module can cost the host")
	if !ok {
		t.Fatal("docs/hooks.md has no §8 on what a module can cost the host")
	}
	for _, want := range []string{
		fmt.Sprintf("at most %d MiB", wasmhost.DefaultMaxModuleSize>>20),
		fmt.Sprintf("| %d s, checked between functions", int(wasmhost.DefaultCompileTimeout.Seconds())),
		fmt.Sprintf("| %d s |", int(wasmhost.DefaultInitTimeout.Seconds())),
		fmt.Sprintf("2^%d entries", bits.Len(wasmhost.MaxTableEntries)-1),
		fmt.Sprintf("%d MiB per instance", wasmhost.MaxTableEntries*8>>20),
		fmt.Sprintf("a decision of %d MiB", wasmhost.DefaultMaxOutput>>20),
		fmt.Sprintf("at most %d operations", hooks.MaxOps),
		fmt.Sprintf("at most %d values and %d MiB of JSON", hooks.MaxCopyValues, hooks.MaxCopyBytes>>20),
	} {
		if !strings.Contains(model, want) {
			t.Errorf("docs/hooks.md §8 does not say %q", want)
		}
	}
}
