package wasm

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConformance runs the WASI probe (testdata/conform) through
// containerd under husk and compares its stdout and exit status with what
// WASI preview1 and the OCI spec say: args, environment, cwd, the rootfs
// preopened as /, file operations, read-only mounts, clocks, random,
// exit codes and stdin. Each case runs twice: as chosen by its args[0]
// (the default linux handler recognises the module) and with
// io.husk.handler=wasm.
func TestConformance(t *testing.T) {
	roDir := t.TempDir()
	if err := os.WriteFile(roDir+"/in-mount", []byte("from a mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		flags  []string
		args   []string
		stdout string
		code   int
		stdin  string
	}{
		{"args", nil, []string{"conform.wasm", "args", "a", "b c", ""},
			"[conform.wasm]\n[args]\n[a]\n[b c]\n[]\n", 0, ""},
		{"args keep the path as given", nil, []string{"/bin/conform.wasm", "args"},
			"[/bin/conform.wasm]\n[args]\n", 0, ""},
		{"env", []string{"--env", "FOO=bar baz", "--env", "EMPTY="}, []string{"conform.wasm", "env", "FOO", "EMPTY", "PATH", "NOPE"},
			"FOO=bar baz true\nEMPTY= true\nPATH=/bin true\nNOPE= false\n", 0, ""},
		{"cwd from the spec", []string{"--cwd", "/data"}, []string{"conform.wasm", "cwd", "hello.txt"},
			"/data\nhello file\n", 0, ""},
		{"file operations in the rootfs", nil, []string{"conform.wasm", "files", "/tmp"},
			"size 12 dir [g link sub] content \"hello\\nworld\\n\"\nfiles ok\n", 0, ""},
		{"read-only mount", []string{"--mount", "type=bind,src=" + roDir + ",dst=/ro,options=rbind:ro"}, []string{"conform.wasm", "ro", "/ro/new"},
			"read-only\n", 0, ""},
		{"mount content", []string{"--mount", "type=bind,src=" + roDir + ",dst=/ro,options=rbind:ro"}, []string{"conform.wasm", "read", "/ro/in-mount"},
			"/ro/in-mount: \"from a mount\"\n", 0, ""},
		{"read-write mount", []string{"--mount", "type=bind,src=" + t.TempDir() + ",dst=/rw,options=rbind:rw"}, []string{"conform.wasm", "files", "/rw"},
			"size 12 dir [g link sub] content \"hello\\nworld\\n\"\nfiles ok\n", 0, ""},
		{"clocks", nil, []string{"conform.wasm", "clocks", fmt.Sprint(time.Now().Unix())},
			"clocks ok\n", 0, ""},
		{"random", nil, []string{"conform.wasm", "random"},
			"random ok\n", 0, ""},
		{"exit code", nil, []string{"conform.wasm", "exit", "3"},
			"exiting 3\n", 3, ""},
		{"exit zero", nil, []string{"conform.wasm", "exit", "0"},
			"exiting 0\n", 0, ""},
		{"stdin", nil, []string{"conform.wasm", "stdin"},
			"ONE\nTWO\nlines 2\n", 0, "one\ntwo\n"},
		{"small module", nil, []string{"hello.wasm"},
			"hello from wasm\n", 0, ""},
		{"path#func runs another export", nil, []string{"/bin/multi.wasm#other"},
			"other\n", 0, ""},
		{"_start by default", nil, []string{"/bin/multi.wasm"},
			"start\n", 0, ""},
	}
	for _, tt := range tests {
		for _, mode := range []struct {
			name  string
			flags []string
		}{{"detected", nil}, {"annotated", []string{"--annotation", "io.husk.handler=wasm"}}} {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				r := ctrRun(t, tt.stdin, append(append([]string{}, mode.flags...), tt.flags...), tt.args...)
				if r.stdout != tt.stdout || r.code != tt.code {
					t.Errorf("%s: exit %d, stdout:\n%s\nwant exit %d, stdout:\n%s\nstderr: %s",
						strings.Join(tt.args, " "), r.code, r.stdout, tt.code, tt.stdout, r.stderr)
				}
			})
		}
	}
}

// TestTrap: a trap is a non-zero exit (134, as wasmtime reports it) with
// the trap on stderr.
func TestTrap(t *testing.T) {
	r := ctrRun(t, "", nil, "/bin/trap.wasm")
	if r.code != 134 || !strings.Contains(r.stderr, "unreachable") {
		t.Fatalf("exit %d, stderr %q; want 134 and the trap (unreachable) on stderr", r.code, r.stderr)
	}
}
