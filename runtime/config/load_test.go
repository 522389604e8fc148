package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// wantErr is one *Error a test expects, at an exact place.
type wantErr struct {
	file         string // relative to the test directory
	line, column int
	key          string
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string // relative to the test directory
		explicit bool
		want     func(c *Config) // applied to Default(); nil: no change
		sources  []string        // relative to the test directory
		errs     []wantErr       // non-nil: Load fails with exactly these
		cause    error           // when set, every error Is this
	}{
		{
			name: "no files gives defaults",
		},
		{
			name: "main file overrides defaults",
			files: map[string]string{"config.toml": `
[runtime]
default_handler = "wasm"
[linux]
systemd_cgroup = true
`},
			want: func(c *Config) {
				c.Runtime.DefaultHandler = HandlerWasm
				c.Linux.SystemdCgroup = true
			},
			sources: []string{"config.toml"},
		},
		{
			name: "drop-ins apply in lexical order and override only their keys",
			files: map[string]string{
				"config.toml": `
[runtime]
default_handler = "wasm"
state_dir = "/var/run/husk"
`,
				"config.d/20-b.toml": `runtime.default_handler = "linux"`,
				"config.d/10-a.toml": `
[runtime]
default_handler = "virt"
[log]
level = "debug"
`,
				// Not drop-ins: each would fail if applied.
				"config.d/.30-hidden.toml": `bogus = 1`,
				"config.d/40-c.toml.bak":   `bogus = 1`,
				"config.d/README":          `bogus = 1`,
			},
			want: func(c *Config) {
				c.Runtime.DefaultHandler = HandlerLinux
				c.Runtime.StateDir = "/var/run/husk"
				c.Log.Level = LevelDebug
			},
			sources: []string{"config.toml", "config.d/10-a.toml", "config.d/20-b.toml"},
		},
		{
			name:  "missing main file still applies drop-ins",
			files: map[string]string{"config.d/10-a.toml": "[linux]\nno_pivot_root = true\n"},
			want: func(c *Config) {
				c.Linux.NoPivotRoot = true
			},
			sources: []string{"config.d/10-a.toml"},
		},
		{
			name:  "unknown top-level key",
			files: map[string]string{"config.toml": "# comment\nbogus = 1\n"},
			errs:  []wantErr{{"config.toml", 2, 1, "bogus"}},
			cause: errUnknownKey,
		},
		{
			name: "unknown nested keys are all reported",
			files: map[string]string{
				"config.toml": "[linux]\nsystemd_cgroup = true\n",
				"config.d/10-x.toml": `[linux]
systemd_cgroup = true
systmd_cgroup = true
[runtime]
state_dir = "/run/husk"
log.level = "info"
`,
			},
			errs: []wantErr{
				{"config.d/10-x.toml", 3, 1, "linux.systmd_cgroup"},
				{"config.d/10-x.toml", 6, 1, "runtime.log.level"},
			},
			cause: errUnknownKey,
		},
		{
			name:  "unknown table",
			files: map[string]string{"config.toml": "[log]\n[handlers]\nx = 1\n"},
			errs:  []wantErr{{"config.toml", 2, 2, "handlers"}},
			cause: errUnknownKey,
		},
		{
			name:  "syntax error",
			files: map[string]string{"config.toml": "[log]\nlevel = \"info\n"},
			errs:  []wantErr{{"config.toml", 2, 14, ""}},
		},
		{
			name:  "duplicate key names the full key",
			files: map[string]string{"config.toml": "[linux]\nno_pivot_root = true\nno_pivot_root = false\n"},
			errs:  []wantErr{{"config.toml", 3, 1, "linux.no_pivot_root"}},
		},
		{
			name:  "wrong type",
			files: map[string]string{"config.toml": "[linux]\nno_pivot_root = \"yes\"\n"},
			errs:  []wantErr{{"config.toml", 2, 17, "linux.no_pivot_root"}},
		},
		{
			name:  "wrong type in an inline table names the full key",
			files: map[string]string{"config.toml": "runtime = { default_handler = \"linux\", state_dir = 1 }\n"},
			errs:  []wantErr{{"config.toml", 1, 52, "runtime.state_dir"}},
		},
		{
			name: "bad handler name in a drop-in",
			files: map[string]string{
				"config.toml":        "[runtime]\ndefault_handler = \"wasm\"\n",
				"config.d/10-x.toml": "# typo\n[runtime]\ndefault_handler = \"vrit\"\n",
				"config.d/20-y.toml": "bogus = 1\n", // not reached
			},
			errs: []wantErr{{"config.d/10-x.toml", 3, 1, "runtime.default_handler"}},
		},
		{
			name:  "bad log level in a dotted key",
			files: map[string]string{"config.toml": "\nlog.level = \"verbose\"\n"},
			errs:  []wantErr{{"config.toml", 2, 1, "log.level"}},
		},
		{
			name:  "relative state_dir",
			files: map[string]string{"config.toml": "[runtime]\n  state_dir = \"run/husk\"\n"},
			errs:  []wantErr{{"config.toml", 2, 3, "runtime.state_dir"}},
		},
		{
			name:  "the qemu hypervisor and its keys",
			files: map[string]string{"config.toml": "[virt]\nhypervisor = \"qemu\"\n[virt.qemu]\nbinary = \"/opt/qemu/bin/qemu-system-x86_64\"\naccel = \"tcg\"\nuser = \"husk-qemu\"\n"},
			want: func(c *Config) {
				c.Virt.Hypervisor = "qemu"
				c.Virt.QEMU = VirtQEMU{Binary: "/opt/qemu/bin/qemu-system-x86_64", Accel: "tcg", User: "husk-qemu"}
			},
			sources: []string{"config.toml"},
		},
		{
			name:  "bad qemu keys",
			files: map[string]string{"config.toml": "[virt]\nhypervisor = \"xen\"\n[virt.qemu]\nbinary = \"qemu-system-x86_64\"\naccel = \"hvf\"\nuser = \"root:root\"\n"},
			errs: []wantErr{
				{"config.toml", 2, 1, "virt.hypervisor"},
				{"config.toml", 4, 1, "virt.qemu.binary"},
				{"config.toml", 5, 1, "virt.qemu.accel"},
				{"config.toml", 6, 1, "virt.qemu.user"},
			},
		},
		{
			name:    "agent_timeout",
			files:   map[string]string{"config.toml": "[virt]\nagent_timeout = \"1m\"\n"},
			want:    func(c *Config) { c.Virt.AgentTimeout = "1m" },
			sources: []string{"config.toml"},
		},
		{
			name:  "bad agent_timeout",
			files: map[string]string{"config.toml": "[virt]\nagent_timeout = \"0s\"\n"},
			errs:  []wantErr{{"config.toml", 2, 1, "virt.agent_timeout"}},
		},
		{
			name:  "agent_timeout over its bound",
			files: map[string]string{"config.toml": "[virt]\nagent_timeout = \"11m\"\n"},
			errs:  []wantErr{{"config.toml", 2, 1, "virt.agent_timeout"}},
		},
		{
			name:  "unclean state_dir",
			files: map[string]string{"config.toml": "[runtime]\nstate_dir = \"/run//husk/\"\n"},
			errs:  []wantErr{{"config.toml", 2, 1, "runtime.state_dir"}},
		},
		{
			name: "all bad values of a file are reported",
			files: map[string]string{"config.toml": `[runtime]
default_handler = "kvm"
state_dir = ""
[log]
level = "loud"
`},
			errs: []wantErr{
				{"config.toml", 2, 1, "runtime.default_handler"},
				{"config.toml", 3, 1, "runtime.state_dir"},
				{"config.toml", 5, 1, "log.level"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			got, err := Load(filepath.Join(dir, "config.toml"), tt.explicit)

			if tt.errs != nil {
				if err == nil {
					t.Fatalf("Load succeeded with %+v, want errors %+v", got, tt.errs)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not ErrInvalidArgument", err)
				}
				if tt.cause != nil && !errors.Is(err, tt.cause) {
					t.Errorf("error %v is not %v", err, tt.cause)
				}
				var gotErrs []wantErr
				for _, e := range configErrors(err) {
					rel, _ := filepath.Rel(dir, e.File)
					gotErrs = append(gotErrs, wantErr{rel, e.Line, e.Column, e.Key})
				}
				if !reflect.DeepEqual(gotErrs, tt.errs) {
					t.Errorf("errors at %+v, want %+v; error:\n%v", gotErrs, tt.errs, err)
				}
				return
			}

			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			if tt.want != nil {
				tt.want(&want)
			}
			for _, s := range tt.sources {
				want.Sources = append(want.Sources, filepath.Join(dir, s))
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Load = %+v, want %+v", *got, want)
			}
		})
	}
}

func TestLoadExplicitMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "husk.toml")
	_, err := Load(path, true)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Load(missing, explicit) = %v, want ErrNotFound", err)
	}
	if want := "config file " + path + ": not found"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestWrongTypeKeepsDecodeError(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"config.toml": "[linux]\nno_pivot_root = 1\n"})
	_, err := Load(filepath.Join(dir, "config.toml"), false)
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v does not wrap a *toml.DecodeError", err)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{
		File: "/etc/husk/config.d/10-x.toml", Line: 3, Column: 1,
		Key: "runtime.default_handler",
		Err: HandlerName("vrit").Validate(),
	}
	want := `/etc/husk/config.d/10-x.toml:3:1: key runtime.default_handler: unknown handler "vrit" (want linux, wasm or virt)`
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
	e.Line, e.Key = 0, ""
	if want := `/etc/husk/config.d/10-x.toml: unknown handler "vrit" (want linux, wasm or virt)`; e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if ps := c.validate(); len(ps) > 0 {
		t.Errorf("Default() has problems: %+v", ps)
	}
}

// configErrors flattens err, a joined set of *Error, in order.
func configErrors(err error) []*Error {
	if e, ok := err.(*Error); ok {
		return []*Error{e}
	}
	var out []*Error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, configErrors(e)...)
		}
	}
	return out
}

// writeFiles writes files (paths relative to dir), creating directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadInline(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"config.d/50-node.toml": "[log]\nlevel = \"debug\"\n",
	})
	body := "[runtime]\ndefault_handler = \"wasm\"\n"
	c, err := loadInline("inline", []byte(body), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime.DefaultHandler != HandlerWasm || c.Log.Level != LevelDebug {
		t.Errorf("inline config = %+v / %+v, want the body's handler and the drop-in's level", c.Runtime, c.Log)
	}
	if want := []string{"inline", filepath.Join(dir, "config.d/50-node.toml")}; !reflect.DeepEqual(c.Sources, want) {
		t.Errorf("Sources = %q, want %q", c.Sources, want)
	}

	_, err = loadInline("containerd runtime options", []byte("[runtime]\nSystemdCgroup = true\n"), dir)
	var e *Error
	if !errors.As(err, &e) || e.File != "containerd runtime options" || e.Line != 2 || e.Key != "runtime.SystemdCgroup" {
		t.Fatalf("unknown inline key: error %v, want one naming the options at line 2, key runtime.SystemdCgroup", err)
	}
}
