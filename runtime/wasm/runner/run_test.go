package runner

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// These run modules in-process (no container): the runner's outcome
// mapping — exit codes, traps, exports, args — without root.
func TestRun(t *testing.T) {
	tests := []struct {
		name, module, fn string
		args             []string
		code             int
		stdout, stderr   string
	}{
		{"start", "hello.wasm", "", nil, 0, "hello from wasm\n", ""},
		{"export", "multi.wasm", "other", nil, 0, "other\n", ""},
		{"default start", "multi.wasm", "", nil, 0, "start\n", ""},
		{"missing export", "multi.wasm", "nope", nil, 126, "", `has no exported function "nope"`},
		{"trap", "trap.wasm", "", nil, TrapStatus, "", "wasm error: unreachable"},
		{"unknown import", "badimport.wasm", "", nil, TrapStatus, "", "module[env] not instantiated"},
		{"missing file", "nope.wasm", "", nil, 127, "", "reading module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(context.Background(), options{
				module: "../testdata/" + tt.module, fn: tt.fn, pages: 16,
				args:  append([]string{tt.module}, tt.args...),
				stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
			})
			if code != tt.code || out.String() != tt.stdout || !strings.Contains(errOut.String(), tt.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, stderr with %q", code, out.String(), errOut.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestWithPWD(t *testing.T) {
	if got := withPWD([]string{"A=1", "PWD=/x"}); len(got) != 2 {
		t.Fatalf("PWD given: %v", got)
	}
	got := withPWD([]string{"A=1"})
	if len(got) != 2 || !strings.HasPrefix(got[1], "PWD=/") {
		t.Fatalf("PWD added: %v", got)
	}
}

func TestMainFlags(t *testing.T) {
	if code := Main([]string{"-pages", "0", "--", "x.wasm"}); code != 125 {
		t.Fatalf("-pages 0: %d", code)
	}
	if code := Main(nil); code != 125 {
		t.Fatalf("no module: %d", code)
	}
}

// TestWASIPreview1List: the shim's list of the functions the runner
// provides (runnerapi, which links no wazero) is wazero's.
func TestWASIPreview1List(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		t.Fatal(err)
	}
	var got []string
	for name := range rt.Module(runnerapi.WASIModule).ExportedFunctionDefinitions() {
		got = append(got, name)
	}
	want := slices.Clone(runnerapi.WASIPreview1)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("wazero provides %v\nrunnerapi lists %v", got, want)
	}
}

func TestPrecompile(t *testing.T) {
	dir := t.TempDir()
	var stderr strings.Builder
	if code := Precompile(context.Background(), dir, strings.NewReader("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00"), &stderr); code != runnerapi.BadModule {
		t.Fatalf("invalid module: exit %d, %q", code, stderr.String())
	}
	if code := Precompile(context.Background(), "", strings.NewReader(""), &stderr); code != runnerapi.Usage {
		t.Fatalf("no cache dir: exit %d", code)
	}
}
