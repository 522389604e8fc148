// Package build compiles a hook policy into a hook module. A Go policy (a
// main package using policies/sdk) becomes a WASI reactor built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
//
// and a C policy (a directory of .c files and no Go package, using
// policies/c's husk.h) a freestanding module built with
//
//	clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -Wl,--strip-all
//
// (the built-in policies are C: a module of a few kB loads in well under a
// millisecond, a Go one in tens). It is what `huskctl policy build` and
// husk's tests run. A Go policy needs the go command (the build cache makes
// a rebuild take a fraction of a second), a C policy clang and wasm-ld
// (Debian's clang and lld).
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	csdk "github.com/huskrt/husk/policies/c"
)

// Flags are the go build flags of a hook module, after "build".
var Flags = []string{"-buildmode=c-shared", "-trimpath", "-ldflags=-s -w"}

// Env are the environment variables of a hook module build, added to the
// current environment.
var Env = []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}

// Go builds the policy in dir into the hook module out: a C policy (see
// IsC) with C, else the Go main package in dir, in its own module context
// (dir's go.mod, or the one above it). Errors carry the compiler's output.
func Go(ctx context.Context, dir, out string) error {
	if IsC(dir) {
		return C(ctx, dir, out)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build hook module: %w", err)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("build hook module: %w", err)
	}
	args := append([]string{"build"}, Flags...)
	args = append(args, "-o", absOut, ".")
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), Env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(output.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("build hook module from %s: %w\n%s", dir, errBuild, msg)
	}
	return nil
}

// errBuild is the cause of a failed go build.
var errBuild = errors.New("go build failed")

// errCBuild is the cause of a failed C build.
var errCBuild = errors.New("clang failed")

// Command returns the shell command Go runs, for messages and docs.
func Command(dir, out string) string {
	if IsC(dir) {
		return "clang " + strings.Join(quoteAll(CFlags), " ") + " -o " + out + " " + filepath.Join(dir, "*.c")
	}
	return strings.Join(Env, " ") + " go build " + strings.Join(quoteAll(Flags), " ") + " -o " + out + " " + dir
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if strings.ContainsAny(s, " \t") {
			s = "'" + s + "'"
		}
		out[i] = s
	}
	return out
}

// CFlags are clang's flags for a C hook module: freestanding wasm32 (no
// libc, no WASI imports), a module without a start function whose exports
// are the ones husk.h names, optimised and without debugging names. Bulk
// memory (a WebAssembly 2.0 feature wazero runs) makes memcpy and memset
// one instruction each instead of a loop, which a module pays a deadline
// check for at every iteration.
var CFlags = []string{"--target=wasm32", "-nostdlib", "-O2", "-mbulk-memory", "-Wall", "-Werror=implicit-function-declaration",
	"-Wl,--no-entry", "-Wl,--strip-all"}

// IsC reports whether dir holds a C policy: .c files, and no Go files
// other than tests (a C built-in keeps its engine tests beside it).
func IsC(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	hasC := false
	for _, e := range entries {
		switch name := e.Name(); {
		case e.IsDir():
		case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"):
			return false
		case strings.HasSuffix(name, ".c"):
			hasC = true
		}
	}
	return hasC
}

// errNoClang is the cause of a C build on a host without clang or wasm-ld.
var errNoClang = errors.New("building a C hook module needs clang and wasm-ld: install Debian's clang and lld packages (hack/install-tools.sh does)")

// C builds the C policy in dir (its .c files, with husk.h on the include
// path) into the hook module out.
func C(ctx context.Context, dir, out string) error {
	clang, err := exec.LookPath("clang")
	if err != nil {
		return fmt.Errorf("build hook module from %s: %w", dir, errNoClang)
	}
	if _, err := exec.LookPath("wasm-ld"); err != nil {
		return fmt.Errorf("build hook module from %s: %w", dir, errNoClang)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("build hook module: %w", err)
	}
	sources, err := filepath.Glob(filepath.Join(absDir, "*.c"))
	if err != nil || len(sources) == 0 {
		return fmt.Errorf("build hook module from %s: no .c files: %w", dir, errCBuild)
	}
	slices.Sort(sources)
	absOut, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("build hook module: %w", err)
	}
	inc, err := os.MkdirTemp("", "husk-c-sdk-")
	if err != nil {
		return fmt.Errorf("build hook module: %w", err)
	}
	defer os.RemoveAll(inc)
	if err := os.WriteFile(filepath.Join(inc, csdk.HeaderName), csdk.Header, 0o644); err != nil {
		return fmt.Errorf("build hook module: %w", err)
	}
	args := append(slices.Clone(CFlags), "-I", inc, "-o", absOut)
	args = append(args, sources...)
	cmd := exec.CommandContext(ctx, clang, args...)
	cmd.Dir = absDir
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		_ = os.Remove(absOut)
		msg := strings.TrimSpace(output.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("build hook module from %s: %w\n%s", dir, errCBuild, msg)
	}
	return nil
}
