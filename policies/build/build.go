// Package build compiles a Go hook policy (a main package using
// policies/sdk) into a hook module: a WASI reactor built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
//
// It is what `huskctl policy build` and husk's tests run. It needs the go
// command; the build cache makes a rebuild take a fraction of a second.
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Flags are the go build flags of a hook module, after "build".
var Flags = []string{"-buildmode=c-shared", "-trimpath", "-ldflags=-s -w"}

// Env are the environment variables of a hook module build, added to the
// current environment.
var Env = []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}

// Go builds the Go main package in dir into the hook module out. The
// package is built in its own module context (dir's go.mod, or the one
// above it). Errors carry the go command's output.
func Go(ctx context.Context, dir, out string) error {
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

// Command returns the shell command Go runs, for messages and docs.
func Command(dir, out string) string {
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
