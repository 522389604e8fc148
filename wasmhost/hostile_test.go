package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/wasmhost"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// controlChars are what a hostile module puts in text that reaches logs
// and terminals: a newline to forge a log line, ESC to start a terminal
// escape sequence, C1 CSI, DEL, a bidirectional override and a line
// separator.
var controlChars = []string{"\n", "\r", "\x1b", "\u009b", "\x7f", "\u202e", "\u2028"}

func hasControl(s string) bool {
	for _, c := range controlChars {
		if strings.Contains(s, c) {
			return true
		}
	}
	return false
}

func TestEscapeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcödé and emoji 🦀", "plain text, ünïcödé and emoji 🦀"},
		{"two\nlines", `two\nlines`},
		{"\x1b[2J\x1b]0;title\x07", `\x1b[2J\x1b]0;title\a`},
		{"csi \u009b31m del \x7f", `csi \u009b31m del \x7f`},
		{"bidi \u202egnp.exe sep \u2028", `bidi \u202egnp.exe sep \u2028`},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{"tab\there", `tab\there`},
	}
	for _, tt := range tests {
		if got := wasmhost.EscapeText(tt.in); got != tt.want {
			t.Errorf("EscapeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestModuleTextIsEscaped: what a module writes through husk.log, and the
// names it imports, reach the log and the user's error as one line of
// printable text: control characters are escaped, not passed on.
func TestModuleTextIsEscaped(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
	)
	h := newHost(t, wasmhost.Config{Log: func(_ context.Context, _ string, _ slog.Level, msg string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, msg)
	}})
	// decision.wat logs the point name it is given.
	m := mustLoad(t, h, "decision", wasmhost.ModuleConfig{Config: []byte(`{"allow":true}`)})
	forged := "container.create\ntime=2026-01-01 level=ERROR msg=\"forged\" \x1b[2J\u009b31m\u202e\x7f"
	if _, err := m.Decide(context.Background(), forged, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(lines) != 1 || hasControl(lines[0]) || !strings.Contains(lines[0], `container.create\ntime=`) || !strings.Contains(lines[0], `\x1b[2J`) {
		t.Errorf("logged %q, want one line with the control characters escaped", lines)
	}
	mu.Unlock()

	_, err := load(t, h, "ctlimport", wasmhost.ModuleConfig{})
	if !errors.Is(err, wasmhost.ErrABI) || hasControl(err.Error()) || !strings.Contains(err.Error(), `imports env\x1b[2J.now\nlevel=ERROR msg=forged\u202e, which husk does not provide`) {
		t.Errorf("Load: %q, want the import's names escaped", err)
	}
}

// decideOnce loads testdata/<name>.wat with a 64 MiB limit and returns
// its decision.
func decideOnce(t *testing.T, h *wasmhost.Host, name string) (string, error) {
	t.Helper()
	m, err := load(t, h, name, wasmhost.ModuleConfig{MemoryLimitPages: 1024, Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	out, err := m.Decide(context.Background(), "container.create", []byte(`{}`))
	return string(out), err
}

// TestTablesAreBounded: tables are host memory outside the memory limit
// (8 bytes an entry in wazero, which accepts 2^32 entries). A module
// declaring more than MaxTableEntries fails to load; a table declared
// without a maximum cannot grow past its share (one table.grow of 2^26
// entries cost 515 MiB and 2 s).
func TestTablesAreBounded(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	_, err := load(t, h, "bigtable", wasmhost.ModuleConfig{})
	if !errors.Is(err, wasmhost.ErrLoad) || !strings.Contains(err.Error(), "declares tables of 67108864 entries, over husk's limit of 1048576") {
		t.Errorf("Load(bigtable): %v, want refused for its table", err)
	}
	// tablegrow allows when table.grow returned -1.
	if out, err := decideOnce(t, h, "tablegrow"); err != nil || out != `{"allow":true}` {
		t.Errorf("tablegrow: %s, %v; want table.grow refused", out, err)
	}
}

// TestSetsAreBounded: what husk.set_new keeps for an instance is bounded
// in bytes, not only in sets and members (eight sets of one 32 MiB string
// cost 291 MiB of host memory).
func TestSetsAreBounded(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	// bigsets allows when set_new returned -1 before its eighth set.
	if out, err := decideOnce(t, h, "bigsets"); err != nil || out != `{"allow":true}` {
		t.Errorf("bigsets: %s, %v; want a set refused", out, err)
	}
}

// TestMemoryIsOutsideTheGoHeap: an instance's memory is one mapping of the
// limit, grown without copying: a module that grows to its 64 MiB limit
// page by page (1.6 s and 287 MiB of host memory when wazero grew a Go
// slice) holds no Go heap for it, so the limit is what the host pays.
func TestMemoryIsOutsideTheGoHeap(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	m := mustLoad(t, h, "growpages", wasmhost.ModuleConfig{MemoryLimitPages: 1024, Timeout: 10 * time.Second})
	if out, err := m.Decide(context.Background(), "container.create", []byte(`{}`)); err != nil || string(out) != `{"allow":true}` {
		t.Fatalf("growpages: %s, %v", out, err)
	}
	after := heap() // the instance, at 64 MiB of memory, is alive in the pool
	t.Logf("Go heap: %d MiB before, %d MiB with the instance at its limit", before>>20, after>>20)
	if after > before+16<<20 {
		t.Errorf("the Go heap grew by %d MiB for a module at its 64 MiB limit, want its memory outside the heap", (after-before)>>20)
	}
	runtime.KeepAlive(m)
}

// manyFunctions returns the path of a WAT module with n functions, each a
// few dozen instructions: wazero compiles it function by function.
func manyFunctions(t *testing.T, n int) string {
	var b strings.Builder
	b.WriteString("(module\n  (memory (export \"memory\") 1)\n  (func (export \"husk_hook_abi_v1\"))\n")
	b.WriteString("  (func (export \"husk_alloc\") (param i32) (result i32) (i32.const 1024))\n")
	b.WriteString("  (func (export \"husk_decide\") (param i32 i32 i32 i32) (result i64) (i64.const 0))\n")
	for i := range n {
		fmt.Fprintf(&b, "  (func $f%d (param $x i32) (result i32)\n    (local.get $x)", i)
		for j := range 20 {
			fmt.Fprintf(&b, " (i32.const %d) (i32.mul) (i32.const %d) (i32.xor)", i+j, j)
		}
		b.WriteString(")\n")
	}
	b.WriteString(")\n")
	path := filepath.Join(t.TempDir(), "many.wat")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCompileHasADeadline: compiling is bounded like every other phase: a
// module whose compilation runs past CompileTimeout fails to load with a
// timeout (before, a 3 MB module compiled for 2.7 s, using 458 MiB, with
// no deadline), and the same module loads under a sufficient one.
func TestCompileHasADeadline(t *testing.T) {
	wasm := wasmtest.WAT(t, manyFunctions(t, 5000))
	cfg := wasmhost.ModuleConfig{Name: "many", Timeout: time.Second, MemoryLimitPages: 16}
	h := newHost(t, wasmhost.Config{CompileTimeout: time.Millisecond})
	_, err := h.Load(context.Background(), wasm, cfg)
	if !errors.Is(err, wasmhost.ErrTimeout) || !strings.Contains(err.Error(), `module "many": load: deadline exceeded (1ms): compiling the module took too long`) {
		t.Fatalf("Load under a 1ms compile deadline: %v, want a timeout", err)
	}
	h = newHost(t, wasmhost.Config{})
	m, err := h.Load(context.Background(), wasm, cfg)
	if err != nil {
		t.Fatalf("Load under the default deadline: %v", err)
	}
	_ = m.Close(context.Background())
}

// TestSleepEndsAtTheDeadline: with the clock grant a module's WASI sleep
// is real, and a host function is not stopped by closing the module: a
// sleep of an hour held the call, and the step waiting on it, for the
// hour. It now ends at the call's deadline.
func TestSleepEndsAtTheDeadline(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	m := mustLoad(t, h, "sleep", wasmhost.ModuleConfig{Grants: wasmhost.GrantClock, Timeout: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := m.Decide(context.Background(), "container.create", []byte(`{}`))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, wasmhost.ErrTimeout) {
			t.Errorf("Decide: %v, want the deadline exceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a module's sleep held its call 30 s past a 100ms deadline")
	}
}

// watModule writes the module text body (between the standard exports and
// the closing parenthesis) to a file and returns its binary.
func watModule(t *testing.T, body string) []byte {
	t.Helper()
	text := "(module\n  (memory (export \"memory\") 1)\n  (func (export \"husk_hook_abi_v1\"))\n" +
		"  (func (export \"husk_alloc\") (param i32) (result i32) (i32.const 1024))\n" +
		"  (func (export \"husk_decide\") (param i32 i32 i32 i32) (result i64) (i64.const 0))\n" + body + ")\n"
	path := filepath.Join(t.TempDir(), "m.wat")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return wasmtest.WAT(t, path)
}

// TestDefinitionsAreBounded: wazero spends host memory and time on every
// definition of a module, for every instance, outside the memory limit
// and before any deadline (three million globals: 4.6 s and 536 MiB; four
// million empty tables: 4.4 s and 610 MiB; one function of 50 million
// locals: 5.8 s and 1.3 GiB; a type of three million parameters: minutes).
// A module with more of a kind
// than husk's bound fails to load before wazero decodes it; one at the
// bound loads.
func TestDefinitionsAreBounded(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	cfg := wasmhost.ModuleConfig{Name: "m", Timeout: time.Second, MemoryLimitPages: 16}
	for _, tt := range []struct {
		def  string
		n    int
		msg  string
		fits bool
	}{
		{"(global i32 (i32.const 0))\n", 1 << 14, "", true},
		{"(global i32 (i32.const 0))\n", 1<<14 + 1, "declares 16385 globals, over husk's limit of 16384", false},
		{"(table 0 funcref)\n", 64, "", true},
		{"(table 0 funcref)\n", 65, "declares 65 tables, over husk's limit of 64", false},
		// A function's locals (50 million in a 122-byte module: 5.8 s, 1.3 GiB).
		{"(func (local" + strings.Repeat(" i32", 1<<14) + "))\n", 1, "", true},
		{"(func (local" + strings.Repeat(" i32", 1<<14+1) + "))\n", 1, "declares over 16384 locals, husk's limit", false},
		{"(func (local" + strings.Repeat(" i64", 1<<13) + "))\n", 129, "declares over 1048576 locals in all", false},
		// A function type's parameters (three million: minutes to load).
		{"(type (func (param" + strings.Repeat(" i32", 1000) + ")))\n", 1, "", true},
		{"(type (func (param" + strings.Repeat(" i32", 1001) + ")))\n", 1, "has 1001 parameters, over husk's limit of 1000", false},
	} {
		_, err := h.Load(context.Background(), watModule(t, strings.Repeat(tt.def, tt.n)), cfg)
		switch {
		case tt.fits && err != nil:
			t.Errorf("%d × %.40s: %v", tt.n, tt.def, err)
		case !tt.fits && (!errors.Is(err, wasmhost.ErrLoad) || !strings.Contains(err.Error(), tt.msg)):
			t.Errorf("%d × %.40s: %v, want refused saying %q", tt.n, tt.def, err, tt.msg)
		}
	}
}

// TestControlFlowIsBounded: wazero's compile time grows with the square of
// a function's blocks and branches and cannot be stopped inside a
// function: one function of 40000 empty blocks (a 120 KB module) took 51 s
// to compile. Such a module fails to load at once; a function of a
// thousand blocks compiles.
func TestControlFlowIsBounded(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	cfg := wasmhost.ModuleConfig{Name: "m", Timeout: time.Second, MemoryLimitPages: 16}
	blocks := func(n int) []byte {
		return watModule(t, "(func "+strings.Repeat("(block) ", n)+")\n")
	}
	if _, err := h.Load(context.Background(), blocks(1000), cfg); err != nil {
		t.Fatalf("1000 blocks: %v", err)
	}
	wasm := blocks(40000)
	done := make(chan error, 1)
	go func() {
		_, err := h.Load(context.Background(), wasm, cfg)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, wasmhost.ErrLoad) || !strings.Contains(err.Error(), "control flow would cost wazero too much to compile") {
			t.Errorf("40000 blocks: %v, want refused for its control flow", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("40000 blocks still compiling after 20 s")
	}
}

// TestStackIsBounded: wazero keeps a module's call stack in host memory
// outside the memory limit, doubled as it deepens up to a ceiling of its
// own: a module recursing without end made the host allocate 165 MiB in
// 0.7–1.1 s before wazero trapped ("stack overflow"). husk counts each
// call's frames against MaxStackBytes: the same module now traps with
// "call stack exhausted" having made the host allocate a few MiB, and a
// recursion 2000 deep, within the bound, still runs.
func TestStackIsBounded(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	m := mustLoad(t, h, "recurse", wasmhost.ModuleConfig{Timeout: 10 * time.Second})
	if out, err := m.Decide(context.Background(), "shallow", []byte(strings.Repeat(" ", 2000))); err != nil || string(out) != `{"allow":true}` {
		t.Fatalf("a recursion 2000 deep: %s, %v", out, err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := m.Decide(context.Background(), "container.create", []byte(`{}`))
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a recursion without end: %v after %v, %d KiB of Go heap allocated", err, took, alloc>>10)
	if !errors.Is(err, wasmhost.ErrTrap) || !strings.Contains(err.Error(), "call stack exhausted: its frames need over 8 MiB, husk's limit") {
		t.Errorf("Decide: %v, want the call stack exhausted", err)
	}
	// A module may not take the counter's name.
	if _, err := h.Load(context.Background(), watModule(t, `(global (export "husk.stack") (mut i32) (i32.const 0))`),
		wasmhost.ModuleConfig{Name: "m", Timeout: time.Second, MemoryLimitPages: 16}); !errors.Is(err, wasmhost.ErrLoad) ||
		!strings.Contains(err.Error(), `exports "husk.stack", a name husk gives its call-stack counter`) {
		t.Errorf("a module exporting husk.stack: %v, want refused", err)
	}
	// wazero's stack slice is at most twice what the frames use, and it
	// copies the old one as it grows: three times the bound in all.
	if alloc > 3*wasmhost.MaxStackBytes {
		t.Errorf("the host allocated %d MiB for the module's call stack, want at most %d", alloc>>20, 3*wasmhost.MaxStackBytes>>20)
	}
}

// TestTruncatedSectionIsRefused: a module whose section runs past its end
// is refused before wazero sees it. wazero decodes such a section before
// it finds it cut short and allocates for the counts it declares: this
// 26-byte module (found by FuzzInstrumentStack), declaring a type of 2^32
// parameters, made the process allocate 32 GiB and die.
func TestTruncatedSectionIsRefused(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	wasm := []byte("\x00asm\x01\x00\x00\x00\x01\x11\x03`\x80\x80\xfc\xff\x0fB \x86B\x80\x80\b\x84\x03")
	_, err := h.Load(context.Background(), wasm, wasmhost.ModuleConfig{Name: "m", Timeout: time.Second, MemoryLimitPages: 16})
	if !errors.Is(err, wasmhost.ErrLoad) || !strings.Contains(err.Error(), "malformed: section 1 at byte 8 runs past the end of the module") {
		t.Errorf("Load: %v, want refused as malformed", err)
	}
}

// TestDeclaredSizesAreChecked: wazero's decoder allocates for a count or
// a length before reading what it counts. Each module here is a few
// bytes: before, the code section's count, the name section's and the
// element segment's killed the process (fatal error: out of memory), the
// data segment's, the import name's and the custom section name's cost
// 4 GiB each, and a function count cut short at its section's end, which
// wazero reads on into the next section, 3 GiB. Now each fails to load
// having cost nothing (the name section is dropped: that module is then
// not a hook module).
func TestDeclaredSizesAreChecked(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	const header = "\x00asm\x01\x00\x00\x00"
	for _, tt := range []struct {
		name, wasm, msg string
	}{
		{"code section count", "\x0a\x05\xff\xff\xff\xff\x0f", "malformed: section 10 at byte 8: declares 4294967295 entries in 0 bytes"},
		{"function names", "\x00\x0c\x04name\x01\x05\xff\xff\xff\xff\x0f", "does not export husk_hook_abi_v1"},
		{"element segment", "\x09\x08\x01\x01\x00\xff\xff\xff\xff\x0f", "malformed: section 9 at byte 8: declares 4294967295 entries in 0 bytes"},
		{"data segment", "\x05\x03\x01\x00\x01\x0b\x0a\x01\x00\x41\x00\x0b\xff\xff\xff\xff\x0f", "malformed: section 11 at byte 13: declares 4294967295 bytes where 0 are left"},
		{"import name", "\x02\x06\x01\xff\xff\xff\xff\x0f", "malformed: section 2 at byte 8: declares 4294967295 bytes where 0 are left"},
		{"custom section name", "\x00\x05\xff\xff\xff\xff\x0f", "malformed: section 0 at byte 8: declares 4294967295 bytes where 0 are left"},
		// wazero panicked on this one (makeslice: len out of range).
		{"local declarations past the body", "\x0a\x17\x04\x05\x020\x7f0c0000000000000000", "wazero failed decoding the module"},
		{"function count cut short", "\x03\x04\x8d\x8d\x8d\x8d\x03\x01\x00", "malformed: section 3 at byte 8: a count or length runs past the end of its section"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := h.Load(context.Background(), []byte(header+tt.wasm), wasmhost.ModuleConfig{Name: "m", Timeout: time.Second, MemoryLimitPages: 16})
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.msg)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: loading allocated %d MiB", tt.name, alloc>>20)
		}
	}
}

// TestDeclaredCountsEndWithTheBody: a count in a function body (local
// declaration groups, br_table targets, select types) is walked only as
// far as the body's bytes go. Before, the walk that bounds a module's
// control flow went on reading past the end for all of a count of 2^32:
// 4 s of CPU per such body, before any deadline (found by
// FuzzInstrumentStack); 16 of them cost a minute.
func TestDeclaredCountsEndWithTheBody(t *testing.T) {
	h := newHost(t, wasmhost.Config{MaxInstances: 1})
	const bodies = 16
	var code []byte
	for range bodies { // (local declarations: 2^32-1 groups, then nothing)
		code = append(code, 6, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00)
	}
	funcs := append([]byte{bodies}, make([]byte, bodies)...) // each of type 0
	wasm := []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00")
	wasm = append(append(wasm, 3, byte(len(funcs))), funcs...)
	wasm = append(append(wasm, 10, byte(len(code)+1), bodies), code...)
	done := make(chan error, 1)
	go func() {
		_, err := h.Load(context.Background(), wasm, wasmhost.ModuleConfig{Name: "m", Timeout: time.Second, MemoryLimitPages: 16})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Load of a module of cut-short bodies succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading 16 cut-short function bodies still ran after 10 s")
	}
}
