package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

const goodHook = `
[[hook]]
name = "deny-privileged"
module = "/usr/lib/husk/policies/deny-privileged.wasm"
points = ["container.create"]
`

func TestLoadHooks(t *testing.T) {
	denyPrivileged := Hook{
		Name:        "deny-privileged",
		Module:      "/usr/lib/husk/policies/deny-privileged.wasm",
		Points:      []string{"container.create"},
		Kind:        HookCheck,
		Mode:        HookEnforce,
		OnError:     HookDeny,
		Timeout:     "1s",
		MemoryLimit: "64MiB",
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []Hook
		errs  []wantErr
	}{
		{
			name:  "defaults fill the keys left out",
			files: map[string]string{"config.toml": goodHook},
			want:  []Hook{denyPrivileged},
		},
		{
			name: "every key",
			files: map[string]string{"config.toml": `
[[hook]]
name = "ro"
module = "/p/ro.wasm"
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
points = ["container.rootfs", "container.create"]
kind = "change"
mode = "audit"
on_error = "allow"
timeout = "2s"
memory_limit = "1536KiB"
grants = ["random", "clock"]
[hook.config]
exempt = ["a", "b"]
level = 3
[hook.config.nested]
x = true
`},
			want: []Hook{{
				Name: "ro", Module: "/p/ro.wasm",
				SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				Points: []string{"container.rootfs", "container.create"},
				Kind:   HookChange,
				Mode:   HookAudit, OnError: HookAllow, Timeout: "2s", MemoryLimit: "1536KiB",
				Grants: []HookGrant{GrantRandom, GrantClock},
				Config: map[string]any{
					"exempt": []any{"a", "b"},
					"level":  int64(3),
					"nested": map[string]any{"x": true},
				},
			}},
		},
		{
			name: "drop-ins append to the chain in order",
			files: map[string]string{
				"config.toml": goodHook,
				"config.d/20-b.toml": `[[hook]]
name = "b"
module = "/b.wasm"
points = ["process.exec"]
`,
				"config.d/10-a.toml": `[log]
level = "debug"
[[hook]]
name = "a1"
module = "/a1.wasm"
points = ["sandbox.vm"]
[[hook]]
name = "a2"
module = "/a2.wasm"
points = ["sandbox.delete"]
mode = "audit"
`,
			},
			want: []Hook{
				denyPrivileged,
				{Name: "a1", Module: "/a1.wasm", Points: []string{"sandbox.vm"}, Kind: HookCheck, Mode: HookEnforce, OnError: HookDeny, Timeout: "1s", MemoryLimit: "64MiB"},
				{Name: "a2", Module: "/a2.wasm", Points: []string{"sandbox.delete"}, Kind: HookCheck, Mode: HookAudit, OnError: HookDeny, Timeout: "1s", MemoryLimit: "64MiB"},
				{Name: "b", Module: "/b.wasm", Points: []string{"process.exec"}, Kind: HookCheck, Mode: HookEnforce, OnError: HookDeny, Timeout: "1s", MemoryLimit: "64MiB"},
			},
		},
		{
			name: "a drop-in without hooks keeps the chain",
			files: map[string]string{
				"config.toml":        goodHook,
				"config.d/10-a.toml": "[linux]\nno_pivot_root = true\n",
			},
			want: []Hook{denyPrivileged},
		},
		{
			name: "bad values of the second hook are located in its table",
			files: map[string]string{"config.toml": goodHook + `
[[hook]]
name = "two"
module = "relative.wasm"
points = ["container.create", "container.craete"]
mode = "enforcing"
on_error = "ignore"
timeout = "forever"
memory_limit = "16MB"
grants = ["network"]
sha256 = "E3B0"
kind = "mutate"
`},
			errs: []wantErr{
				{"config.toml", 9, 1, "hook[1].module"},
				{"config.toml", 16, 1, "hook[1].sha256"},
				{"config.toml", 10, 1, "hook[1].points"},
				{"config.toml", 17, 1, "hook[1].kind"},
				{"config.toml", 11, 1, "hook[1].mode"},
				{"config.toml", 12, 1, "hook[1].on_error"},
				{"config.toml", 13, 1, "hook[1].timeout"},
				{"config.toml", 14, 1, "hook[1].memory_limit"},
				{"config.toml", 15, 1, "hook[1].grants"},
			},
		},
		{
			name:  "missing required keys point at the table header",
			files: map[string]string{"config.toml": "[log]\nlevel = \"info\"\n\n[[hook]]\nmode = \"audit\"\n"},
			errs: []wantErr{
				{"config.toml", 4, 3, "hook[0].name"},
				{"config.toml", 4, 3, "hook[0].module"},
				{"config.toml", 4, 3, "hook[0].points"},
			},
		},
		{
			name:  "a missing key of a hook in the middle points at its header",
			files: map[string]string{"config.toml": goodHook + "[[hook]]\nname = \"x\"\nmodule = \"/x.wasm\"\n[[hook]]\nname = \"y\"\nmodule = \"/y.wasm\"\npoints = [\"sandbox.vm\"]\n"},
			errs:  []wantErr{{"config.toml", 6, 3, "hook[1].points"}},
		},
		{
			name: "duplicate name in a drop-in is reported against the drop-in",
			files: map[string]string{
				"config.toml":        goodHook,
				"config.d/10-a.toml": "# again\n" + goodHook,
			},
			errs: []wantErr{{"config.d/10-a.toml", 4, 1, "hook[0].name"}},
		},
		{
			name:  "timeout out of range",
			files: map[string]string{"config.toml": goodHook + "timeout = \"1h\"\n"},
			errs:  []wantErr{{"config.toml", 6, 1, "hook[0].timeout"}},
		},
		{
			name:  "memory limit not a whole number of pages",
			files: map[string]string{"config.toml": goodHook + "memory_limit = \"100KiB\"\n"},
			errs:  []wantErr{{"config.toml", 6, 1, "hook[0].memory_limit"}},
		},
		{
			name:  "point listed twice",
			files: map[string]string{"config.toml": "[[hook]]\nname = \"x\"\nmodule = \"/x.wasm\"\npoints = [\"sandbox.vm\", \"sandbox.vm\"]\n"},
			errs:  []wantErr{{"config.toml", 4, 1, "hook[0].points"}},
		},
		{
			name:  "bad name",
			files: map[string]string{"config.toml": "[[hook]]\nname = \"Deny Privileged\"\nmodule = \"/x.wasm\"\npoints = [\"sandbox.vm\"]\n"},
			errs:  []wantErr{{"config.toml", 2, 1, "hook[0].name"}},
		},
		{
			name:  "unknown key in a hook",
			files: map[string]string{"config.toml": goodHook + "modul = \"/x\"\n"},
			errs:  []wantErr{{"config.toml", 6, 1, "hook.modul"}},
		},
		{
			name:  "wrong type in a hook",
			files: map[string]string{"config.toml": goodHook + "timeout = 100\n"},
			errs:  []wantErr{{"config.toml", 6, 11, "hook.timeout"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			got, err := Load(filepath.Join(dir, "config.toml"), true)
			if tt.errs != nil {
				if err == nil {
					t.Fatalf("Load succeeded with hooks %+v, want errors %+v", got.Hooks, tt.errs)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not ErrInvalidArgument", err)
				}
				var gotErrs []wantErr
				for _, e := range configErrors(err) {
					rel, _ := filepath.Rel(dir, e.File)
					gotErrs = append(gotErrs, wantErr{rel, e.Line, e.Column, e.Key})
				}
				if !reflect.DeepEqual(gotErrs, tt.errs) {
					t.Errorf("errors at %+v\nwant       %+v\nerror:\n%v", gotErrs, tt.errs, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got.Hooks, tt.want) {
				t.Errorf("hooks = %+v\nwant    %+v", got.Hooks, tt.want)
			}
		})
	}
}

func TestHookErrorMessage(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"config.toml": `[[hook]]
name = "x"
module = "/x.wasm"
points = ["container.craete"]
`})
	_, err := Load(filepath.Join(dir, "config.toml"), true)
	want := filepath.Join(dir, "config.toml") + `:4:1: key hook[0].points: unknown point "container.craete" (want one of sandbox.create, sandbox.vm, sandbox.network, container.create, container.rootfs, container.mount, container.cgroups, container.start, process.exec, container.update, container.delete, sandbox.delete)`
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		s     ByteSize
		bytes uint64
		pages uint32
		err   bool // Bytes fails
		pgErr bool // WasmPages fails
	}{
		{s: "65536", bytes: 65536, pages: 1},
		{s: "64KiB", bytes: 64 << 10, pages: 1},
		{s: "16MiB", bytes: 16 << 20, pages: 256},
		{s: "4GiB", bytes: 4 << 30, pages: 65536},
		{s: "5GiB", bytes: 5 << 30, pgErr: true},
		{s: "1KiB", bytes: 1 << 10, pgErr: true},
		{s: "0", bytes: 0, pgErr: true},
		{s: "", err: true},
		{s: "MiB", err: true},
		{s: "16MB", err: true},
		{s: "16 MiB", err: true},
		{s: "-1MiB", err: true},
		{s: "+1MiB", err: true},
		{s: "1.5MiB", err: true},
		{s: "0x10", err: true},
		{s: "17179869184GiB", err: true}, // 2^34 GiB overflows 64 bits
		{s: "18446744073709551616", err: true},
	}
	for _, tt := range tests {
		b, err := tt.s.Bytes()
		if (err != nil) != tt.err || (!tt.err && b != tt.bytes) {
			t.Errorf("ByteSize(%q).Bytes() = %d, %v; want %d, error %v", tt.s, b, err, tt.bytes, tt.err)
		}
		p, err := tt.s.WasmPages()
		wantErr := tt.err || tt.pgErr
		if (err != nil) != wantErr || (!wantErr && p != tt.pages) {
			t.Errorf("ByteSize(%q).WasmPages() = %d, %v; want %d, error %v", tt.s, p, err, tt.pages, wantErr)
		}
	}
}

func TestDurationParse(t *testing.T) {
	if d, err := Duration("150ms").Parse(); err != nil || d != 150*time.Millisecond {
		t.Errorf("Parse(150ms) = %v, %v", d, err)
	}
	for _, s := range []Duration{"", "100", "1 s", "soon"} {
		if _, err := s.Parse(); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func TestAppendHooksDoesNotShareTheEarlierArray(t *testing.T) {
	prev := make([]Hook, 1, 4)
	prev[0] = Hook{Name: "a"}
	a := appendHooks(prev, []Hook{{Name: "b"}})
	b := appendHooks(prev, []Hook{{Name: "c"}})
	if a[1].Name != "b" || b[1].Name != "c" {
		t.Errorf("chains share storage: %q, %q", a[1].Name, b[1].Name)
	}
}
