package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/test/devenv"
)

// Wasm hook policies, end to end through containerd: an operator writes a
// config naming modules, and ctr shows what they decided.

var (
	policyOnce sync.Once
	policyDir  string
	policyErr  error
)

// policy returns the path of built-in policy name, built once per run.
func policy(t *testing.T, name string) string {
	t.Helper()
	needBench(t)
	policyOnce.Do(func() {
		root, err := devenv.RepoRoot()
		if err != nil {
			policyErr = err
			return
		}
		policyDir, policyErr = os.MkdirTemp("", "hpol")
		if policyErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, p := range []string{"deny-privileged", "readonly-rootfs", "exec-allowlist", "allowed-images"} {
			if policyErr = build.Go(ctx, filepath.Join(root, "policies", p), filepath.Join(policyDir, p+".wasm")); policyErr != nil {
				return
			}
		}
	})
	if policyErr != nil {
		t.Fatalf("building policies: %v", policyErr)
	}
	return filepath.Join(policyDir, name+".wasm")
}

// hookConfig writes a husk config with the given [[hook]] tables.
func hookConfig(t *testing.T, hooks string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "husk.toml")
	if err := os.WriteFile(path, []byte(hooks), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyDeniesPrivileged(t *testing.T) {
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "no-privileged"
module = %q
points = ["container.create"]
`, policy(t, "deny-privileged")))
	id := name(t, "")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--privileged", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "true")
	for _, want := range []string{`hook "no-privileged" denied container.create`, "privileged container"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ctr error lacks %q:\n%s", want, msg)
		}
	}
	requireClean(t, id)
	// An unprivileged container passes the same policy.
	ok := name(t, "ok")
	cleanupContainer(t, ok)
	if out := ctr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, ok, "echo", "allowed"); out != "allowed\n" {
		t.Fatalf("unprivileged run = %q", out)
	}
}

func TestPolicyAuditOnlyLogs(t *testing.T) {
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "watch-privileged"
module = %q
points = ["container.create"]
mode = "audit"
`, policy(t, "deny-privileged")))
	id := name(t, "")
	cleanupContainer(t, id)
	if out := ctr(t, "run", "--rm", "--privileged", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "echo", "ran"); out != "ran\n" {
		t.Fatalf("audited privileged run = %q", out)
	}
	// The shim's log reaches containerd's: the audit denial is there.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(bench.LogPath())
		if strings.Contains(string(b), "watch-privileged") && strings.Contains(string(b), id) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit-mode denial was not logged")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPolicyReadonlyRootfsPatch(t *testing.T) {
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "ro"
module = %q
points = ["container.create", "container.rootfs"]
kind = "change"
`, policy(t, "readonly-rootfs")))
	id := name(t, "")
	cleanupContainer(t, id)
	out, stderr, err := bench.Ctr(testCtx(t), "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id,
		"sh", "-c", "touch /written && echo wrote || echo refused")
	if err != nil {
		t.Fatalf("run: %v: %s", err, stderr)
	}
	if out != "refused\n" {
		t.Fatalf("write to the rootfs after the readonly patch: %q, want refused", out)
	}
}

func TestPolicyExecAllowlist(t *testing.T) {
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "exec-list"
module = %q
points = ["process.exec"]
config = { commands = ["/bin/ls"] }
`, policy(t, "exec-allowlist")))
	id := name(t, "")
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "sleep", "1000")
	ctr(t, "task", "exec", "--exec-id", "ok", id, "/bin/ls", "/")
	msg := ctrErr(t, "task", "exec", "--exec-id", "no", id, "/bin/sh", "-c", "id")
	if !strings.Contains(msg, `hook "exec-list" denied process.exec`) {
		t.Fatalf("exec error lacks the denial:\n%s", msg)
	}
	// The container is unharmed.
	if out := ctr(t, "task", "exec", "--exec-id", "ok2", id, "/bin/ls", "/etc/passwd"); out != "/etc/passwd\n" {
		t.Fatalf("allowed exec after a denial = %q", out)
	}
}

// TestPolicyBrokenModule is R3 through containerd: a module that is not
// Wasm fails closed with an error naming it; the next container, with a
// sound config, runs.
func TestPolicyBrokenModule(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "broken.wasm")
	if err := os.WriteFile(bad, []byte("not wasm at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "broken"
module = %q
points = ["container.create"]
`, bad))
	id := name(t, "")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "true")
	if !strings.Contains(msg, `hook "broken"`) {
		t.Fatalf("error does not name the module:\n%s", msg)
	}
	requireClean(t, id)
	next := name(t, "next")
	cleanupContainer(t, next)
	if out := ctr(t, "run", "--rm", "--runtime", husk, devenv.BusyboxRef, next, "echo", "fine"); out != "fine\n" {
		t.Fatalf("next container = %q", out)
	}
}
