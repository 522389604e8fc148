package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// writeTemp writes content to name in dir and returns its path.
func writeTemp(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyTest(t *testing.T) {
	dir := t.TempDir()
	decision := writeTemp(t, dir, "decision.wasm", wasmtest.WAT(t, "../../wasmhost/testdata/decision.wat"))
	trap := writeTemp(t, dir, "trap.wasm", wasmtest.WAT(t, "../../wasmhost/testdata/trap.wat"))
	event := writeTemp(t, dir, "rootfs.json", []byte(`{"version":1,"sandbox":{"id":"p"},"container":{"id":"c"},"readonly":false}`))
	allow := writeTemp(t, dir, "allow.json", []byte(`{"allow":true}`))
	deny := writeTemp(t, dir, "deny.json", []byte(`{"allow":false,"reason":"not on my watch"}`))
	patch := writeTemp(t, dir, "patch.json", []byte(`{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":true}]}`))
	outside := writeTemp(t, dir, "outside.json", []byte(`{"allow":true,"patch":[{"op":"replace","path":"/container/id","value":"x"}]}`))

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // contained
		stderr string // contained
	}{
		{"allow", []string{"--module", decision, "--point", "container.rootfs", "--event", event, "--config", allow}, 0, "allow\n", ""},
		{"deny", []string{"--module", decision, "--point", "container.rootfs", "--event", event, "--config", deny}, 1, "deny: not on my watch", ""},
		{"patch", []string{"--kind", "change", "--module", decision, "--point", "container.rootfs", "--event", event, "--config", patch}, 0, `"readonly": true`, ""},
		{"patch as JSON", []string{"--json", "--kind", "change", "--module", decision, "--point", "container.rootfs", "--event", event, "--config", patch}, 0, `"path": "/readonly"`, ""},
		{"patch outside the rules", []string{"--kind", "change", "--module", decision, "--point", "container.rootfs", "--event", event, "--config", outside}, 2, "", "patch not allowed: a patch may only change /readonly"},
		{"patch from a checking hook", []string{"--module", decision, "--point", "container.rootfs", "--event", event, "--config", patch}, 2, "", `a checking hook may not patch (kind = "check"`},
		{"unknown kind", []string{"--kind", "mutate", "--module", decision, "--point", "container.rootfs", "--event", event, "--config", allow}, 2, "", `unknown kind "mutate"`},
		{"trap", []string{"--module", trap, "--point", "container.rootfs", "--event", event}, 2, "", `module "trap": decide: wasm trap: unreachable`},
		{"missing module", []string{"--module", filepath.Join(dir, "nope.wasm"), "--point", "container.rootfs", "--event", event}, 2, "", "no such file"},
		{"unknown point", []string{"--module", decision, "--point", "container.craete", "--event", event, "--config", allow}, 2, "", `unknown point "container.craete"`},
		{"event of another schema", []string{"--module", decision, "--point", "process.exec", "--event", event, "--config", allow}, 2, "", `unknown member "readonly"`},
		{"missing flags", []string{"--module", decision}, 2, "", "are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := policyTest(context.Background(), tt.args, nil, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q", code, &stdout, &stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestPolicyBuild builds the built-in deny-privileged policy and tests it
// on a privileged container, as an operator's CI would.
func TestPolicyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go policy")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "dp.wasm")
	var stdout bytes.Buffer
	if err := policyBuild(context.Background(), []string{"-o", out, "../../policies/deny-privileged"}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "sha256 ") {
		t.Errorf("build printed %q", &stdout)
	}
	event := writeTemp(t, dir, "create.json", []byte(`{"version":1,"sandbox":{"id":"p"},"container":{"id":"c"},
		"spec":{"ociVersion":"1.2.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}}`))
	var so, se bytes.Buffer
	code := policyTest(context.Background(), []string{"--module", out, "--point", "container.create", "--event", event}, nil, &so, &se)
	if code != 1 || !strings.Contains(so.String(), "deny: privileged container: capability CAP_SYS_ADMIN in the bounding set") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, &so, &se)
	}
	if err := policyBuild(context.Background(), []string{"-o", out, dir}, &stdout); err == nil || !strings.Contains(err.Error(), "go build failed") {
		t.Errorf("building a directory without Go: %v", err)
	}
}

func TestHookName(t *testing.T) {
	for in, want := range map[string]string{"/p/Deny-Privileged.wasm": "deny-privileged", "x y.wasm": "xy", "_.wasm": "module", "é.wasm": "module"} {
		if got := hookName(in); got != want {
			t.Errorf("hookName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPolicyTestRefusesAFIFO: a FIFO given as the module fails at once
// (exit 2) instead of blocking huskctl in open(2), where not even SIGTERM
// gets it out.
func TestPolicyTestRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "policy.wasm")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	event := writeTemp(t, dir, "rootfs.json", []byte(`{"version":1,"readonly":false}`))
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- policyTest(context.Background(), []string{"--module", fifo, "--point", "container.rootfs", "--event", event}, nil, &stdout, &stderr)
	}()
	select {
	case code := <-done:
		if code != 2 || !strings.Contains(stderr.String(), "not a regular file (a FIFO)") {
			t.Errorf("exit %d, stderr %q; want 2 and the FIFO refused", code, &stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("huskctl policy test still blocked on the FIFO after 30s")
	}
}

// TestPolicyTestBoundsItsInputs: the event and the config are read with a
// size bound, and a FIFO, directory or device given for either fails at
// once (exit 2) instead of blocking huskctl (before, --event on a FIFO
// waited in open(2) for a writer, and /dev/zero was read until memory ran
// out). A pipe on stdin ("--event -") still works, bounded.
func TestPolicyTestBoundsItsInputs(t *testing.T) {
	dir := t.TempDir()
	decision := writeTemp(t, dir, "decision.wasm", wasmtest.WAT(t, "../../wasmhost/testdata/decision.wat"))
	eventText := []byte(`{"version":1,"sandbox":{"id":"p"},"container":{"id":"c"},"readonly":false}`)
	event := writeTemp(t, dir, "rootfs.json", eventText)
	allow := writeTemp(t, dir, "allow.json", []byte(`{"allow":true}`))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json") // sparse: its size is checked before anything is read
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, maxEventFile+1); err != nil {
		t.Fatal(err)
	}
	bigConfig := filepath.Join(dir, "bigconfig.json")
	if err := os.WriteFile(bigConfig, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(bigConfig, maxConfigFile+1); err != nil {
		t.Fatal(err)
	}
	args := func(event, config string) []string {
		return []string{"--module", decision, "--point", "container.rootfs", "--event", event, "--config", config}
	}
	for _, tt := range []struct {
		name   string
		args   []string
		stdin  io.Reader
		code   int
		stderr string
	}{
		{"event from a FIFO", args(fifo, allow), nil, 2, `read ` + fifo + `: not a regular file (a FIFO); give a pipe on stdin with "-"`},
		{"config from a FIFO", args(event, fifo), nil, 2, `read ` + fifo + `: not a regular file (a FIFO)`},
		{"event from a directory", args(dir, allow), nil, 2, "not a regular file (a directory)"},
		{"event from a device", args("/dev/zero", allow), nil, 2, "not a regular file (a device)"},
		{"event too large", args(big, allow), nil, 2, "over 16777216 bytes, husk's limit"},
		{"config too large", args(event, bigConfig), nil, 2, "over 1048576 bytes, husk's limit"},
		{"event on stdin", args("-", allow), bytes.NewReader(eventText), 0, ""},
		{"event on stdin, too large", args("-", allow), io.LimitReader(zeros{}, maxEventFile+1), 2, "read -: too large: over 16777216 bytes, husk's limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			stdin := tt.stdin
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			go func() { done <- policyTest(context.Background(), tt.args, stdin, &stdout, &stderr) }()
			select {
			case code := <-done:
				if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
					t.Errorf("exit %d, stderr %q; want %d and %q", code, &stderr, tt.code, tt.stderr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("huskctl policy test still blocked after 30s")
			}
		})
	}
}

// zeros reads as an endless run of zero bytes, as /dev/zero does.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
