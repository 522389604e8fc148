package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// TestWASIFixes runs testdata/wasifix.wasm's probes of the calls the
// runner provides itself, in-process with a fresh directory preopened as
// "/": each exits with the errno WASI says (wazero's own gives the
// "wazero" column, checked so that a fix that stops being needed shows).
func TestWASIFixes(t *testing.T) {
	tests := []struct {
		fn           string
		want, wazero int
	}{
		{"shutdown_file", 57, 8},     // ENOTSOCK; wazero: EBADF
		{"shutdown_closed", 8, 8},    // EBADF
		{"renumber_to_closed", 8, 0}, // EBADF; wazero: allocates fd 99
		{"renumber_files", 0, 0},
		{"readlink_short", 0, 68}, // "targ", 4; wazero: ERANGE
		{"readlink_full", 0, 0},
		{"readlink_fault", 21, 68}, // EFAULT; wazero: ERANGE
		{"prestat_short", 37, 0},   // ENAMETOOLONG; wazero: truncates
		{"prestat_long", 0, 37},    // wazero: ENAMETOOLONG
		{"prestat_fault", 21, 37},  // EFAULT
		{"link_follow", 28, 0},     // EINVAL; wazero: links the file
		{"link_plain", 0, 0},
		{"allocate_dir", 8, 0}, // EBADF; wazero: done
		{"allocate_file", 0, 0},
		{"rights_readonly", 76, 99}, // ENOTCAPABLE; wazero: reports FD_WRITE
		{"rights_reused_fd", 0, 0},
		{"sync_flag", 0, 1},      // wazero: no SYNC in fdstat
		{"set_rights", 0, 52},    // wazero: ENOSYS
		{"trunc_rights", 76, 52}, // ENOTCAPABLE; wazero: ENOSYS
		{"poll_write", 0, 99},    // wazero: not the two write events
		{"poll_fault", 21, 21},
		{"symlink_times", 0, 44},          // wazero: follows the dangling link, ENOENT
		{"renumber_over_stdout", 0, 58},   // wazero: ENOTSUP
		{"renumber_over_preopen", 0, 58},  // wazero: ENOTSUP
		{"renumber_from_stdout", 0, 58},   // wazero: ENOTSUP
		{"renumber_from_preopen", 58, 58}, // still ENOTSUP (docs/limitations.md)
		{"renumber_hostile", 0, 0},
		{"environ_fault", 0, 0},
		{"renumber_self", 0, 8},         // wazero: closes the file, a write is EBADF
		{"renumber_stdout_self", 0, 58}, // wazero: ENOTSUP
		{"pwrite_append", 0, 29},        // wazero: EIO (Go's WriteAt refuses O_APPEND)
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			for _, own := range []bool{true, false} {
				var out, errOut strings.Builder
				o := options{
					module: "../testdata/wasifix.wasm", fn: tt.fn, pages: 16,
					preopens: []runnerapi.Preopen{{Dir: t.TempDir(), Name: "/"}},
					args:     []string{"wasifix.wasm"},
					stdin:    strings.NewReader(""), stdout: &out, stderr: &errOut,
					wazeroWASI: !own,
				}
				code, want := run(context.Background(), o), tt.want
				if !own {
					want = tt.wazero
				}
				if code != want {
					t.Errorf("own calls %v: exit %d, want %d (stderr %q)", own, code, want, errOut.String())
				}
				if own && tt.fn == "renumber_over_stdout" && out.Len() != 0 {
					t.Errorf("the write to fd 1 reached stdout (%q), not the file renumbered over it", out.String())
				}
				if own && (tt.fn == "renumber_from_stdout" || tt.fn == "renumber_stdout_self" || tt.fn == "renumber_hostile") && out.String() != "t" {
					t.Errorf("stdout got %q, want the write to stdout's new number (\"t\")", out.String())
				}
			}
		})
	}
}

func TestScratchRegion(t *testing.T) {
	for _, tt := range []struct {
		size, need, path, pathLen uint32
		at                        uint32
		ok                        bool
	}{
		{65536, 4100, 8192, 10, 0, true},               // below the path
		{65536, 4100, 32, 4, 40, true},                 // after it, aligned
		{65536, 4100, 2000, 62000, 0, false},           // neither fits
		{4096, 4100, 5000, 1, 0, false},                // memory too small
		{65536, 4100, 0xfffffff0, 0xff, 0, true},       // a hostile path: below it (wazero faults on the path)
		{65536, 4100, 0xfffffff0, 0xfffffff0, 0, true}, // no overflow past 2^32
	} {
		at, ok := scratchRegion(tt.size, tt.need, tt.path, tt.pathLen)
		if at != tt.at || ok != tt.ok {
			t.Errorf("%+v: %d %v", tt, at, ok)
		}
	}
}

func TestJoinInside(t *testing.T) {
	for _, tt := range []struct{ dir, p, want string }{
		{"/data", "a/b", "/data/a/b"},
		{"/data", "a/../b", "/data/b"},
		{"/", "x", "/x"},
		{"/data", "..", ""},
		{"/data", "a/../../etc", ""},
		{"/data", "/etc/passwd", ""},
		{"/data", "", ""},
		{"/data", "a\x00b", ""},
	} {
		if got := joinInside(tt.dir, tt.p); got != tt.want {
			t.Errorf("joinInside(%q, %q) = %q, want %q", tt.dir, tt.p, got, tt.want)
		}
	}
}

// TestReleaseStdioRefuses: releaseStdio touches nothing but a wazero
// module's stdio entries, and a module of another kind (or a wazero whose
// types differ) is refused, not a panic.
func TestReleaseStdioRefuses(t *testing.T) {
	type notWazero struct{ api.Module }
	type withSys struct {
		api.Module
		Sys *int
	}
	for _, tt := range []struct {
		name string
		mod  api.Module
		fd   uint32
	}{
		{"nil", nil, 1},
		{"other module", &notWazero{}, 1},
		{"a Sys of another type", &withSys{}, 1},
		{"not stdio", &notWazero{}, 3},
		{"hostile fd", &notWazero{}, 0xffffffff},
	} {
		if restore, ok := releaseStdio(tt.mod, tt.fd); ok || restore != nil {
			t.Errorf("%s: released", tt.name)
		}
	}
}

// TestWASIHostModuleHasOnlyImports: the runner's wasi_snapshot_preview1
// holds the functions the module imports (which wazero compiles a
// trampoline for on every start), the runner's own where it has one; all
// of them when it is not told which.
func TestWASIHostModuleHasOnlyImports(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		imports []string
		want    []string // nil: all of WASI's
	}{
		{[]string{"fd_write", "proc_exit", "not_wasi", "fd_write"}, []string{"fd_write", "proc_exit"}},
		{[]string{}, []string{}},
		{nil, nil},
	} {
		rt := wazero.NewRuntimeWithConfig(ctx, RuntimeConfig())
		if err := instantiateWASI(ctx, rt, nil, tt.imports, newEnviron(nil)); err != nil {
			t.Fatal(err)
		}
		defs := rt.Module(runnerapi.WASIModule).ExportedFunctionDefinitions()
		got := slices.Sorted(maps.Keys(defs))
		switch {
		case tt.want == nil && (len(got) < 46 || !slices.Contains(got, "fd_renumber") || !slices.Contains(got, "args_get")):
			t.Errorf("imports nil: %d functions %v, want all of WASI preview1's", len(got), got)
		case tt.want != nil && !slices.Equal(got, tt.want):
			t.Errorf("imports %v: %v, want %v", tt.imports, got, tt.want)
		}
		if def, ok := defs["fd_write"]; ok && (len(def.ParamTypes()) != 4 || len(def.ResultTypes()) != 1) {
			t.Errorf("fd_write's type: %v -> %v", def.ParamTypes(), def.ResultTypes())
		}
		rt.Close(ctx)
	}
}

// TestEnviron: the runner's environ_sizes_get and environ_get give the
// module what wazero's did with WithEnv (same order, a repeated key in its
// first place with its last value, PWD added for a working directory other
// than "/"), for no variables and for many; TestWASIFixes' environ_fault
// gives them hostile pointers.
func TestEnviron(t *testing.T) {
	many := []string{"PATH=/bin", "A=1", "B", "A=2", "EMPTY=", "EQ=a=b"}
	for i := range 700 {
		many = append(many, fmt.Sprintf("SVC_%d_SERVICE_PORT=tcp://10.0.%d.%d:80", i, i/256, i%256))
	}
	for _, env := range [][]string{nil, {"PATH=/bin", "A=1", "B", "A=2", "EMPTY=", "EQ=a=b"}, many} {
		var outs [2]string
		for i, own := range []bool{true, false} {
			var out, errOut strings.Builder
			o := options{
				module: "../testdata/wasifix.wasm", fn: "environ", pages: 16,
				preopens: []runnerapi.Preopen{{Dir: t.TempDir(), Name: "/"}},
				args:     []string{"wasifix.wasm"}, env: env,
				stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
				wazeroWASI: !own,
			}
			if code := run(context.Background(), o); code != 0 {
				t.Fatalf("%d variables, own calls %v: exit %d (stderr %q)", len(env), own, code, errOut.String())
			}
			outs[i] = out.String()
		}
		if outs[0] != outs[1] {
			t.Errorf("%d variables: the runner's environ gives %.200q, wazero's %.200q", len(env), outs[0], outs[1])
		}
		if len(env) == 6 && outs[0] != "PATH=/bin\nA=2\nB=\nEMPTY=\nEQ=a=b\n" && !strings.HasPrefix(outs[0], "PATH=/bin\nA=2\nB=\nEMPTY=\nEQ=a=b\nPWD=") {
			t.Errorf("environment %q", outs[0])
		}
	}
}
