// Package wasm runs husk's WasmContainer through a real containerd (tier 2):
// the WASI conformance suite, bad modules (R4), escapes from the rootfs
// (R6), exec, TTY, signals, limits and handler selection. Test modules are
// built for the run: Go programs with GOOS=wasip1, small ones from
// WebAssembly text with wabt's wat2wasm. It needs root and `make tools`;
// without them every test skips and says why.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/huskrt/husk/test/devenv"
)

const (
	husk = "io.containerd.husk.v2"
	// suiteRef is the image holding every test module, a few data files and
	// a static busybox (for native programs next to Wasm ones).
	suiteRef = "husk.local/wasm-suite:latest"
)

var (
	// suite is what TestMain set up; bench is its containerd (nil when
	// suite.Skip says why not).
	suite devenv.Suite
	bench *devenv.Containerd
	// escapeDir is a host directory outside every container, holding the
	// file the R6 tests try to reach.
	escapeDir string
	// modules are the built test modules by name (hello, conform, ...).
	modules = map[string][]byte{}
)

// watModules are the modules written in WebAssembly text (testdata/*.wat).
var watModules = []string{"hello", "multi", "trap", "badimport", "spin", "grow"}

func TestMain(m *testing.M) {
	os.Exit(devenv.RunSuite(m, "wasm e2e", &suite, setup))
}

func setup(s *devenv.Suite) error {
	if os.Geteuid() != 0 {
		s.Skip = "needs root (containers, mounts, cgroups)"
		return nil
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	tools := filepath.Join(root, ".tools", "bin")
	if _, err := os.Stat(filepath.Join(tools, "containerd")); err != nil {
		s.Skip = "containerd is not built: run `make tools` (or `make test`)"
		return nil
	}
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		s.Skip = "wat2wasm (wabt) is missing: run `make tools`"
		return nil
	}
	dir, err := os.MkdirTemp("", "hwasm")
	if err != nil {
		return err
	}
	s.Dir = dir
	shimDir := filepath.Join(dir, "bin")
	if err := devenv.BuildShim(shimDir); err != nil {
		return err
	}
	if err := buildModules(filepath.Join(dir, "modules")); err != nil {
		return err
	}
	escapeDir = filepath.Join(dir, "escape")
	if err := os.MkdirAll(escapeDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(escapeDir, "secret"), []byte("host secret\n"), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := devenv.Start(ctx, devenv.Options{
		Dir:      filepath.Join(dir, "c"),
		ToolsBin: tools,
		ShimDir:  shimDir,
		LogLevel: "info",
	})
	if err != nil {
		return err
	}
	s.Bench, bench = c, c
	tarPath := filepath.Join(dir, "suite.tar")
	files, err := suiteFiles()
	if err != nil {
		return err
	}
	if err := devenv.FilesImage(tarPath, suiteRef, files, ocispec.ImageConfig{
		Env:        []string{"PATH=/bin"},
		WorkingDir: "/",
	}); err != nil {
		return err
	}
	return c.ImportImage(ctx, tarPath, suiteRef)
}

// buildModules builds every test module into dir and keeps their bytes.
func buildModules(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "conform.wasm")
	if err := devenv.BuildWasip1(filepath.Join(root, "test/wasm/testdata/conform"), out); err != nil {
		return err
	}
	if modules["conform"], err = os.ReadFile(out); err != nil {
		return err
	}
	for _, m := range watModules {
		out := filepath.Join(dir, m+".wasm")
		if err := devenv.Wat2Wasm(filepath.Join(root, "test/wasm/testdata", m+".wat"), out); err != nil {
			return err
		}
		if modules[m], err = os.ReadFile(out); err != nil {
			return err
		}
	}
	return nil
}

// suiteFiles is the suite image's content.
func suiteFiles() ([]devenv.File, error) {
	var files []devenv.File
	for name, b := range modules {
		files = append(files, devenv.File{Path: "/bin/" + name + ".wasm", Mode: 0o755, Data: b})
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("%w (apt-get install busybox-static)", err)
	}
	secret := filepath.Join(escapeDir, "secret")
	files = append(files,
		// A module that is not one: the Wasm magic, then garbage.
		devenv.File{Path: "/bin/corrupt.wasm", Mode: 0o755, Data: []byte("\x00asm\x01\x00\x00\x00\x01\xffgarbage")},
		devenv.File{Path: "/bin/notwasm", Mode: 0o755, Data: []byte("#!/bin/sh\necho native\n")},
		devenv.File{Path: "/bin/busybox", Mode: 0o755, Data: busybox},
		devenv.File{Path: "/bin/sh", Mode: os.ModeSymlink | 0o777, Target: "/bin/busybox"},
		devenv.File{Path: "/bin/echo", Mode: os.ModeSymlink | 0o777, Target: "/bin/busybox"},
		devenv.File{Path: "/bin/sleep", Mode: os.ModeSymlink | 0o777, Target: "/bin/busybox"},
		devenv.File{Path: "/bin/cat", Mode: os.ModeSymlink | 0o777, Target: "/bin/busybox"},
		devenv.File{Path: "/data/hello.txt", Data: []byte("hello file\n")},
		// R6: links that would lead to the host's secret if they were
		// resolved against the host's root.
		devenv.File{Path: "/data/escape-abs", Mode: os.ModeSymlink | 0o777, Target: secret},
		devenv.File{Path: "/data/escape-rel", Mode: os.ModeSymlink | 0o777, Target: "../../../../../../../.." + secret},
		devenv.File{Path: "/etc/hostname-in-image", Data: []byte("image\n")},
		devenv.File{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		devenv.File{Path: "/proc", Mode: os.ModeDir | 0o755},
		devenv.File{Path: "/sys", Mode: os.ModeDir | 0o755},
		devenv.File{Path: "/dev", Mode: os.ModeDir | 0o755},
	)
	return files, nil
}

func needBench(t *testing.T) *devenv.Containerd {
	t.Helper()
	if bench == nil {
		t.Skip(suite.Skip)
	}
	return bench
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// name returns a container id unique to this test.

// name returns a name unique to this test (devenv.TestName).
var name = devenv.TestName

// result is how a `ctr run --rm` ended.
type result struct {
	stdout, stderr string
	code           int
}

// ctrRun runs `ctr run --rm --runtime husk <flags> suite id args...` with
// stdin (may be empty) and returns its output and exit status.
func ctrRun(t *testing.T, stdin string, flags []string, args ...string) result {
	t.Helper()
	return ctrRunImage(t, stdin, suiteRef, flags, args...)
}

// ctrRunImage is ctrRun of image ref.
func ctrRunImage(t *testing.T, stdin, ref string, flags []string, args ...string) result {
	t.Helper()
	b := needBench(t)
	id := name(t, fmt.Sprint(time.Now().UnixNano()%100000))
	cl := append([]string{"run", "--rm", "--runtime", husk}, flags...)
	cl = append(cl, ref, id)
	cl = append(cl, args...)
	cmd := b.CtrCmd(testCtx(t), cl...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ctr %s: %v", strings.Join(cl, " "), err)
	}
	return result{stdout: o.String(), stderr: e.String(), code: code}
}
