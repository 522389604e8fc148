//go:build !husk_nohooks

package hooks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/runtime/config"
)

// docsBlock returns the first code block of docs/hooks.md of the given
// language after the text after, without its fences.
func docsBlock(t *testing.T, after, lang string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), after)
	if !ok {
		t.Fatalf("docs/hooks.md has no %q", after)
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/hooks.md has no %s block after %q", lang, after)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("the %s block after %q does not end", lang, after)
	}
	return block
}

// TestDocsGoExample builds the Go policy of docs/hooks.md §3 as written,
// as its own package of this module (through the go command's -overlay,
// nothing is written into the tree), and asks it at process.exec as the
// section says: a shell is denied with its reason, another command
// allowed.
func TestDocsGoExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go policy")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build Go policies")
	}
	src := docsBlock(t, "## 3. Writing a policy in Go", "go")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	if err := os.WriteFile(main, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// A package directory that does not exist on disk: the overlay gives
	// it its one file.
	pkg := filepath.Join(repo, "hooks", "testdata", "docs-go-example")
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkg, "main.go"): main}})
	overlayPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "mypolicy.wasm")
	args := append([]string{"build"}, build.Flags...)
	args = append(args, "-overlay", overlayPath, "-o", out, "./hooks/testdata/docs-go-example")
	cmd := exec.Command(goTool, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), build.Env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		t.Fatalf("the example of §3 does not build: %v\n%s", err, &output)
	}

	e := newEngine(t, []config.Hook{hook("mypolicy", out, hooks.ProcessExec)}, hooks.Options{})
	for _, tt := range []struct {
		arg0   string
		allow  bool
		reason string
	}{
		{"/bin/sh", false, "interactive shells are not allowed in production pods"},
		{"bash", false, "interactive shells are not allowed in production pods"},
		{"/bin/ls", true, ""},
	} {
		ev := &hooks.ProcessExecEvent{
			Sandbox:   hooks.Sandbox{ID: "p", Namespace: "default", Handler: "linux", Annotations: hooks.Map{}},
			Container: hooks.Container{ID: "c"},
			ExecID:    "e1",
			Process:   hooks.Process{Args: hooks.List{tt.arg0}, Env: hooks.List{}, Cwd: "/", User: hooks.User{AdditionalGIDs: []uint32{}}},
		}
		o, err := e.Run(context.Background(), hooks.ProcessExec, ev)
		if err != nil || o.Cause != nil || o.Allowed != tt.allow || o.Reason != tt.reason {
			t.Errorf("exec of %s: %+v, %v; want allowed %v, reason %q", tt.arg0, o, err, tt.allow, tt.reason)
		}
	}
}

// TestDocsDeployExample loads the [[hook]] table of docs/hooks.md §1 as
// written, with the built deny-privileged module at its path and its real
// pin in place of the elided one, and asks it: its [hook.config] list
// replaces the default capabilities (CAP_SYS_MODULE denied, CAP_BPF,
// which the default list has and this one does not, allowed), and a
// module that does not match the pin is refused.
func TestDocsDeployExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go policy")
	}
	example := docsBlock(t, "## 1. Deploying hooks", "toml")
	module := goModule(t, "../policies/deny-privileged")
	wasm, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	const docModule, docPin = `"/usr/lib/husk/policies/deny-privileged.wasm"`, `"3f1c…"`
	if !strings.Contains(example, docModule) || !strings.Contains(example, docPin) {
		t.Fatalf("the example of §1 no longer names %s pinned %s:\n%s", docModule, docPin, example)
	}
	load := func(pin string) (*config.Config, error) {
		text := strings.Replace(example, docModule, `"`+module+`"`, 1)
		text = strings.Replace(text, docPin, `"`+pin+`"`, 1)
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return config.Load(path, true)
	}
	cfg, err := load(hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("the example of §1 does not load: %v", err)
	}
	e := newEngine(t, cfg.Hooks, hooks.Options{})
	for _, tt := range []struct {
		cap   string
		allow bool
	}{{"CAP_SYS_MODULE", false}, {"CAP_SYS_ADMIN", false}, {"CAP_BPF", true}} {
		ev := createEvent(false)
		ev.Spec.Process.Capabilities.Bounding = append(ev.Spec.Process.Capabilities.Bounding, tt.cap)
		o, err := e.Run(context.Background(), hooks.ContainerCreate, ev)
		if err != nil || o.Cause != nil || o.Allowed != tt.allow {
			t.Errorf("a container with %s: %+v, %v; want allowed %v", tt.cap, o, err, tt.allow)
		}
	}
	sum[0] ^= 1
	cfg, err = load(hex.EncodeToString(sum[:]))
	if err == nil {
		_, err = hooks.New(context.Background(), cfg.Hooks, hooks.Options{CacheDir: cacheDir()})
	}
	if err == nil || !strings.Contains(err.Error(), "does not match its sha256 pin") {
		t.Errorf("a module under another pin: %v, want refused", err)
	}
}

// TestDocsDecisionExamples parses the decisions of docs/hooks.md §4 as
// husk parses a module's output.
func TestDocsDecisionExamples(t *testing.T) {
	block := docsBlock(t, "3. The decision is one JSON object:", "json")
	var n int
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		n++
		d, err := hooks.ParseDecision([]byte(line))
		if err != nil {
			t.Errorf("the decision %s of §4: %v", line, err)
			continue
		}
		t.Logf("%s: %+v", line, d)
	}
	if n != 2 {
		t.Errorf("§4 shows %d decisions, want the denial and the patch", n)
	}
}

// TestDocsCExample builds the C hook of docs/hooks.md §5 with the command
// the section gives (clang, wasm-ld and wasi-libc: Debian's clang, lld,
// wasi-libc and libclang-rt-14-dev-wasm32, which hack/install-tools.sh
// installs) and asks it: a container that asks for a terminal is denied,
// one that does not allowed.
func TestDocsCExample(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("clang is needed to build the C example: install Debian's clang, lld, wasi-libc and libclang-rt-14-dev-wasm32 (hack/install-tools.sh does)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "policy.c")
	if err := os.WriteFile(src, []byte(docsBlock(t, "## 5. Writing a hook in C or Rust", "c")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("clang", "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o", "policy.wasm", "policy.c")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the C example of §5 does not build as the section says: %v\n%s", err, out)
	}
	askTerminal(t, filepath.Join(dir, "policy.wasm"))
}

// TestDocsRustExample builds the Rust hook of docs/hooks.md §5 (with
// rustc alone: it needs no crate) and asks it as TestDocsCExample does.
func TestDocsRustExample(t *testing.T) {
	rustc, err := exec.LookPath("rustc")
	if err != nil {
		t.Skip("rustc is needed to build the Rust example")
	}
	libdir, err := exec.Command(rustc, "--target", "wasm32-wasip1", "--print", "target-libdir").Output()
	if err != nil {
		t.Skipf("rustc does not know the wasm32-wasip1 target: %v", err)
	}
	if _, err := os.Stat(strings.TrimSpace(string(libdir))); err != nil {
		t.Skip("rustc's wasm32-wasip1 standard library is not installed (rustup target add wasm32-wasip1)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "policy.rs")
	if err := os.WriteFile(src, []byte(docsBlock(t, "## 5. Writing a hook in C or Rust", "rust")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rustc, "--target", "wasm32-wasip1", "--crate-type", "cdylib", "-O", "-o", "policy.wasm", "policy.rs")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Rust example of §5 does not build: %v\n%s", err, out)
	}
	askTerminal(t, filepath.Join(dir, "policy.wasm"))
}

// askTerminal asks the module at container.create, as §5's examples
// expect: "no terminals".
func askTerminal(t *testing.T, module string) {
	t.Helper()
	e := newEngine(t, []config.Hook{hook("no-terminals", module, hooks.ContainerCreate)}, hooks.Options{})
	for _, terminal := range []bool{true, false} {
		ev := createEvent(false)
		ev.Spec.Process.Terminal = terminal
		o, err := e.Run(context.Background(), hooks.ContainerCreate, ev)
		if err != nil || o.Cause != nil || o.Allowed == terminal || (terminal && o.Reason != "no terminals") {
			t.Errorf("a container with terminal %v: %+v, %v; want denied (no terminals) only with one", terminal, o, err)
		}
	}
}
