package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/test/devenv"
)

// TestPolicyProjectOutsideTheRepo follows docs/hooks.md's section 3 as a
// policy author outside this repository would, offline: huskctl policy
// new, go test, policy build (flags after the directory) with the
// project's config, policy test over its suite, and then the module
// enforced through ctr: a container whose program the policy lists is
// refused with the policy's reason, another runs (#13 item 4).
func TestPolicyProjectOutsideTheRepo(t *testing.T) {
	needBench(t)
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir() // outside the repository
	huskctl := filepath.Join(work, "huskctl")
	build := exec.Command("go", "build", "-tags", "seccomp", "-o", huskctl, "./cmd/huskctl")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building huskctl: %v\n%s", err, b)
	}
	run := func(dir string, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(testCtx(t), name, args...)
		cmd.Dir = dir
		// No module proxy and no workspace: the project needs neither.
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOWORK=off", "GOFLAGS=-mod=mod")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	run(work, huskctl, "policy", "new", "no-nc")
	proj := filepath.Join(work, "no-nc")
	run(proj, "go", "test", "./...")
	built := run(work, huskctl, "policy", "build", "./no-nc", "-o", "no-nc.wasm", "--config", "no-nc/config.json")
	sum := strings.TrimSpace(built[strings.LastIndex(built, "sha256 ")+len("sha256 "):])
	if len(sum) != 64 {
		t.Fatalf("policy build printed %q", built)
	}
	if out := run(proj, huskctl, "policy", "test", "--module", "../no-nc.wasm", "--suite", "tests.json"); !strings.Contains(out, "4 of 4 passed") {
		t.Fatalf("the project's suite:\n%s", out)
	}

	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "no-nc"
module = %q
sha256 = %q
points = ["container.start", "process.exec"]
[hook.config]
deny = ["nc", "telnet"]
`, filepath.Join(work, "no-nc.wasm"), sum))
	if out := run(work, huskctl, "config", "check", "--config", cfg); !strings.Contains(out, "hook no-nc:") {
		t.Errorf("config check:\n%s", out)
	}
	id := name(t, "denied")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "nc", "-h")
	for _, want := range []string{`hook "no-nc" denied container.start`, `program "nc" is not allowed to run here`} {
		if !strings.Contains(msg, want) {
			t.Errorf("ctr's error lacks %q:\n%s", want, msg)
		}
	}
	requireClean(t, id)
	ok := name(t, "allowed")
	cleanupContainer(t, ok)
	if out := ctr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, ok, "echo", "allowed"); out != "allowed\n" {
		t.Errorf("allowed container printed %q", out)
	}
}
