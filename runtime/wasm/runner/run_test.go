package runner

import (
	"context"
	"os"
	"path/filepath"
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
	if got := withPWD([]string{"A=1", "PWD=/x"}, "/data"); len(got) != 2 || got[1] != "PWD=/x" {
		t.Fatalf("PWD given: %v", got)
	}
	if got := withPWD([]string{"A=1"}, "/data"); len(got) != 2 || got[1] != "PWD=/data" {
		t.Fatalf("PWD added: %v", got)
	}
	// The default cwd adds nothing: the module sees exactly its env.
	for _, wd := range []string{"/", ""} {
		if got := withPWD(nil, wd); len(got) != 0 {
			t.Fatalf("cwd %q: %v, want no env", wd, got)
		}
	}
}

func TestEnvironNoHome(t *testing.T) {
	env := []string{"A=1", "HOME=/root", "B=2"}
	if got := environ(slices.Clone(env), false); !slices.Equal(got, env) {
		t.Fatalf("HOME from the spec: %v", got)
	}
	if got := environ(slices.Clone(env), true); !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Fatalf("HOME from libcontainer: %v", got)
	}
}

func TestCheckPreopens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := checkPreopens(dir + ":/," + dir)
	want := []runnerapi.Preopen{{Dir: dir, Name: "/"}, {Dir: dir, Name: dir}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("%s:/,%s: %v, %v; want %v", dir, dir, got, err, want)
	}
	for _, bad := range []string{file, dir + "/missing", "relative", dir + "/../x", "/:/," + dir + ":/"} {
		if _, err := checkPreopens(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got, err := checkPreopens(""); err != nil || got != nil {
		t.Fatalf("empty list: %v, %v; want none", got, err)
	}
}

// TestPreopenFlag: the runner refuses a bad -preopens with a usage error
// before reading the module.
func TestPreopenFlag(t *testing.T) {
	if code := Main([]string{"-preopens", "/nonexistent-dir-of-husk", "--", "x.wasm"}); code != runnerapi.Usage {
		t.Fatalf("missing preopen dir: %d, want %d", code, runnerapi.Usage)
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
