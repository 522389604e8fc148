package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/wasm"
	"github.com/huskrt/husk/test/devenv"
)

// wasiSuiteTar is the pinned WebAssembly/wasi-testsuite (wasm32-wasip1
// tests of its prod/testsuite-base branch), beside the clone in shared/.
const wasiSuiteTar = "wasi-testsuite-9f80ca35-wasm32-wasip1.tar.xz"

// wasiSuiteDirs are the suite's test directories in the archive.
var wasiSuiteDirs = []string{
	"tests/assemblyscript/testsuite/wasm32-wasip1",
	"tests/c/testsuite/wasm32-wasip1",
	"tests/rust/testsuite/wasm32-wasip1",
}

// wasiExpectedFailures are the suite's tests that husk fails today, by
// "<language>/<test>", with why. docs/limitations.md lists them too. A test
// here that passes fails TestWASISuite, so that the list stays true.
var wasiExpectedFailures = map[string]string{}

// wasiSpec is a test's .json specification (doc/specification.md of the
// suite): a missing file or field takes the default.
type wasiSpec struct {
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"`
	// Root is a directory beside the test that the module gets as its
	// preopened "/"; Dirs are directories preopened under their own names.
	Root     string   `json:"root"`
	Dirs     []string `json:"dirs"`
	ExitCode int      `json:"exit_code"`
	Stdout   *string  `json:"stdout"`
	Stderr   *string  `json:"stderr"`
}

// TestWASISuite runs every test of the WASI testsuite through containerd
// as a Wasm container under husk, each with exactly its arguments,
// environment and preopened directories (a spec file given to `ctr run
// --config`, so that ctr adds nothing to the environment; the
// directories are bind mounts of fresh copies, preopened with the
// io.husk.wasm.preopens annotation), and checks its exit code and output.
func TestWASISuite(t *testing.T) {
	tarball := findWASISuite(t)
	b := needBench(t)
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xJf", tarball, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v: %s", tarball, err, out)
	}
	ctx := testCtx(t)
	out, _, err := b.Ctr(ctx, "oci", "spec")
	if err != nil {
		t.Fatal(err)
	}
	var base specs.Spec
	if err := json.Unmarshal([]byte(out), &base); err != nil {
		t.Fatalf("ctr oci spec: %v", err)
	}

	var passed, failed []string
	var why []string
	for _, sd := range wasiSuiteDirs {
		lang := strings.Split(sd, "/")[1]
		wasms, err := filepath.Glob(filepath.Join(dir, sd, "*.wasm"))
		if err != nil || len(wasms) == 0 {
			t.Fatalf("no tests in %s (%v)", sd, err)
		}
		sort.Strings(wasms)
		for _, w := range wasms {
			name := lang + "/" + strings.TrimSuffix(filepath.Base(w), ".wasm")
			problem := runWASITest(t, b, &base, w)
			expected, isExpected := wasiExpectedFailures[name]
			switch {
			case problem == "":
				passed = append(passed, name)
				if isExpected {
					t.Errorf("%s passes now, but is listed as an expected failure (%s): take it off wasiExpectedFailures and docs/limitations.md", name, expected)
				}
			default:
				failed = append(failed, name)
				why = append(why, fmt.Sprintf("%s: %s", name, problem))
				if !isExpected {
					t.Errorf("%s fails: %s", name, problem)
				}
			}
		}
	}
	for name := range wasiExpectedFailures {
		if !slices.Contains(passed, name) && !slices.Contains(failed, name) {
			t.Errorf("%s is an expected failure, but no such test ran", name)
		}
	}
	t.Logf("WASI testsuite: %d passed, %d failed", len(passed), len(failed))
	for _, w := range why {
		t.Logf("  FAIL %s", w)
	}
	if n := len(passed) + len(failed); n != 72 {
		t.Errorf("ran %d tests, want the suite's 72", n)
	}
}

// findWASISuite returns the suite's archive, in ../shared/testdata of the
// clone; without it the test skips, but fails under CI=true.
func findWASISuite(t *testing.T) string {
	t.Helper()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "..", "shared", "testdata", wasiSuiteTar)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the WASI testsuite is missing under CI: %v", err)
		}
		t.Skipf("the WASI testsuite is missing (%v): it is in shared/testdata beside the clone", err)
	}
	return p
}

// runWASITest runs the test module w as a Wasm container and returns ""
// when it passes, else what went wrong.
func runWASITest(t *testing.T, b *devenv.Containerd, base *specs.Spec, w string) string {
	t.Helper()
	var ts wasiSpec
	if data, err := os.ReadFile(strings.TrimSuffix(w, ".wasm") + ".json"); err == nil {
		if err := json.Unmarshal(data, &ts); err != nil {
			t.Fatalf("%s.json: %v", w, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	testDir := filepath.Dir(w)
	work, err := os.MkdirTemp(t.TempDir(), "case")
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(work, "rootfs")
	for _, d := range []string{"proc", "sys", "dev", "suite"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	module := "/" + filepath.Base(w)
	if err := copyPath(w, filepath.Join(rootfs, module)); err != nil {
		t.Fatal(err)
	}

	spec := cloneSpec(t, base)
	spec.Root = &specs.Root{Path: rootfs}
	spec.Process.Terminal = false
	spec.Process.Args = append([]string{module}, ts.Args...)
	// Exactly the test's environment, in a stable order.
	spec.Process.Env = nil
	keys := make([]string, 0, len(ts.Env))
	for k := range ts.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec.Process.Env = append(spec.Process.Env, k+"="+ts.Env[k])
	}
	// The test's directories: a fresh copy of each, bind-mounted below
	// /suite and preopened ("root" as "/", "dirs" under their names).
	var preopens []string
	addDir := func(d, name string) {
		src := filepath.Join(testDir, d)
		dst := filepath.Join(work, "dirs", d)
		if err := copyPath(src, dst); err != nil {
			t.Fatal(err)
		}
		in := "/suite/" + d
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: in, Type: "bind", Source: dst, Options: []string{"rbind", "rw"}})
		preopens = append(preopens, in+":"+name)
	}
	if ts.Root != "" {
		addDir(ts.Root, "/")
	}
	for _, d := range ts.Dirs {
		addDir(d, d)
	}
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	spec.Annotations[wasm.AnnotationPreopens] = strings.Join(preopens, ",")
	id := name(t, strings.TrimSuffix(filepath.Base(w), ".wasm"))
	// ctr's spec has one cgroup for all ("/default"); ctr run makes one
	// per container, and so does this.
	spec.Linux.CgroupsPath = "/" + b.Namespace + "/" + id
	specFile := filepath.Join(work, "config.json")
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(specFile, data, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := b.CtrCmd(ctx, "run", "--rm", "--runtime", husk, "--config", specFile, id)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return fmt.Sprintf("ctr: %v; stderr: %s", err, reportTail(e.String()))
	}
	switch {
	case code != ts.ExitCode:
		return fmt.Sprintf("exit %d, want %d; stderr: %s", code, ts.ExitCode, reportTail(e.String()))
	case ts.Stdout != nil && o.String() != *ts.Stdout:
		return fmt.Sprintf("stdout %q, want %q", reportTail(o.String()), *ts.Stdout)
	case ts.Stderr != nil && e.String() != *ts.Stderr:
		return fmt.Sprintf("stderr %q, want %q", reportTail(e.String()), *ts.Stderr)
	}
	return ""
}

// reportTail is the end of s, on one line, for a report.
func reportTail(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "\nwasm stack trace:"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 400 {
		s = "..." + s[len(s)-400:]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

func cloneSpec(t *testing.T, s *specs.Spec) *specs.Spec {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c specs.Spec
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// copyPath copies a file or a directory tree (cp -a).
func copyPath(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
	return nil
}
