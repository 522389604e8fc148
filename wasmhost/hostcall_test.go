package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/wasmhost"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// hostCallModule returns a module of pages pages of memory whose
// husk_decide makes one host call (WAT instructions leaving a result of
// type typ) and answers {"allow":true} when the result is want,
// {"allow":false} otherwise.
func hostCallModule(t *testing.T, pages int, call, typ, want string) []byte {
	t.Helper()
	text := fmt.Sprintf(`(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "husk" "json_get" (func $json_get (param i32 i32 i32) (result i64)))
  (memory (export "memory") %[1]d %[1]d)
  (data (i32.const 1024) "{\"allow\":true}{\"allow\":false}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 256))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (if (result i64) (%[4]s.eq (%[2]s) (%[4]s.const %[3]s))
      (then (i64.const 0x000004000000000e))
      (else (i64.const 0x0000040e0000000f)))))
`, pages, call, want, typ)
	path := filepath.Join(t.TempDir(), "hostcall.wat")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return wasmtest.WAT(t, path)
}

// TestHostCallsAreBounded: a host function is not stopped by the deadline
// (only the module's own code is, at its loop headers), so one call whose
// length is the module's whole memory ran on past it. With 1 GiB of
// memory and a 50 ms deadline, before: random_get of 1 GiB ran 5 s (8 s
// from crypto/rand), fd_write and fd_read over 128 million empty iovecs
// 4.2 s each, poll_oneoff of 13 million subscriptions 2.4 s (and trapped
// inside wazero), json_get with a 1 GiB pointer 17 s, copying it. Now
// random_get stops at the deadline, fd_write and fd_read refuse more than
// 1024 iovecs and poll_oneoff more than 4096 subscriptions (EINVAL, as
// Linux does past IOV_MAX), and json_get and path_open answer without
// reading what cannot match or has nowhere to be opened.
func TestHostCallsAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("maps 1 GiB of memory per module")
	}
	const pages = 16384 // 1 GiB
	n := pages<<16 - 2048
	for _, tt := range []struct {
		name      string
		grants    wasmhost.Grants
		call      string
		typ, want string // the call's result: allowed when it is want
		timeout   bool   // the call ends at its deadline instead
	}{
		{"random_get", 0, fmt.Sprintf("call $random_get (i32.const 2048) (i32.const %d)", n), "i32", "0", true},
		{"random_get from crypto/rand", wasmhost.GrantRandom, fmt.Sprintf("call $random_get (i32.const 2048) (i32.const %d)", n), "i32", "0", true},
		{"fd_write", 0, fmt.Sprintf("call $fd_write (i32.const 1) (i32.const 2048) (i32.const %d) (i32.const 1500)", n/8), "i32", "28", false},
		{"fd_read", 0, fmt.Sprintf("call $fd_read (i32.const 0) (i32.const 2048) (i32.const %d) (i32.const 1500)", n/8), "i32", "28", false},
		{"poll_oneoff", 0, fmt.Sprintf("call $poll_oneoff (i32.const 2048) (i32.const %d) (i32.const %d) (i32.const 1500)", 2048+n/80*48, n/80), "i32", "28", false},
		{"path_open", 0, fmt.Sprintf("call $path_open (i32.const 3) (i32.const 0) (i32.const 2048) (i32.const %d) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 1500)", n), "i32", "8", false},
		{"json_get", 0, fmt.Sprintf("call $json_get (i32.const 0) (i32.const 2048) (i32.const %d)", n), "i64", "-1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, wasmhost.Config{MaxInstances: 1})
			m, err := h.Load(context.Background(), hostCallModule(t, pages, tt.call, tt.typ, tt.want),
				wasmhost.ModuleConfig{Name: "m", Timeout: 50 * time.Millisecond, MemoryLimitPages: pages, Grants: tt.grants})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			out, err := m.Decide(context.Background(), "container.create", []byte(`{"version":1}`))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s, %v in %v, %d KiB allocated", out, err, took, alloc>>10)
			switch {
			case tt.timeout && !errors.Is(err, wasmhost.ErrTimeout):
				t.Errorf("Decide: %s, %v; want the deadline exceeded", out, err)
			case !tt.timeout && (err != nil || string(out) != `{"allow":true}`):
				t.Errorf("Decide: %s, %v; want the call to return %s", out, err, tt.want)
			}
			// A hang guard 40 times the deadline, not a measurement: each
			// took seconds before.
			if took > 2*time.Second {
				t.Errorf("the call took %v past a 50ms deadline", took)
			}
			if alloc > 16<<20 {
				t.Errorf("the call allocated %d MiB of Go heap", alloc>>20)
			}
		})
	}
}

// TestDocsStateTheHostBounds keeps docs/hooks.md §8 in step with the
// bounds on host functions and on the call stack.
func TestDocsStateTheHostBounds(t *testing.T) {
	doc, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, model, ok := strings.Cut(string(doc), "## 8. What a module can cost the host")
	if !ok {
		t.Fatal("docs/hooks.md has no §8 on what a module can cost the host")
	}
	for _, want := range []string{
		fmt.Sprintf("makes its bytes %d KiB at a time", wasmhost.RandomChunk>>10),
		fmt.Sprintf("take at most %d iovecs", wasmhost.MaxIOVecs),
		fmt.Sprintf("`poll_oneoff` %d subscriptions", wasmhost.MaxSubscriptions),
		fmt.Sprintf("%d MiB of frames per call", wasmhost.MaxStackBytes>>20),
		fmt.Sprintf("each function adds %d bytes and %d bytes for each", wasmhost.FrameBase, wasmhost.ValueBytes),
		fmt.Sprintf("at most %d MiB for a call at the bound", 3*wasmhost.MaxStackBytes>>20),
	} {
		if !strings.Contains(model, want) {
			t.Errorf("docs/hooks.md §8 does not say %q", want)
		}
	}
}
