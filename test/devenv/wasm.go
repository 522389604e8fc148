package devenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildShim builds containerd-shim-husk-v2 and husk-wasm-runner from this
// tree into dir, as `make build` does, so that a test never runs a stale
// binary and the shim finds its Wasm runner next to itself.
func BuildShim(dir string) error {
	if err := goBuild(dir, "containerd-shim-husk-v2", "./cmd/containerd-shim-husk-v2", "CGO_ENABLED=1", "-tags", "seccomp grpcnotrace"); err != nil {
		return err
	}
	return BuildWasmRunner(dir)
}

// BuildShimVariant builds the shim into dir as name with the build tags
// tags besides the default build's (e.g. "husk_nohooks": the variants of
// make build VARIANT=...), for a second runtime beside the full shim
// (containerd runs io.containerd.<x>.v2 as containerd-shim-<x>-v2).
func BuildShimVariant(dir, name, tags string) error {
	return goBuild(dir, name, "./cmd/containerd-shim-husk-v2", "CGO_ENABLED=1", "-tags", "seccomp grpcnotrace "+tags)
}

// BuildWasmRunner builds husk-wasm-runner (static) into dir.
func BuildWasmRunner(dir string) error {
	return goBuild(dir, "husk-wasm-runner", "./cmd/husk-wasm-runner", "CGO_ENABLED=0", "-trimpath", "-ldflags", "-s -w")
}

func goBuild(dir, name, pkg, cgo string, flags ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", filepath.Join(dir, name), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("devenv: building %s: %v\n%s", name, err, out)
	}
	return nil
}

// BuildWasip1 compiles the Go program in pkgDir (a directory, relative to
// the repository's root or absolute) for GOOS=wasip1 into out.
func BuildWasip1(pkgDir, out string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(pkgDir) {
		pkgDir = filepath.Join(root, pkgDir)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("devenv: GOOS=wasip1 go build %s: %v\n%s", pkgDir, err, b)
	}
	return nil
}

// Wat2Wasm assembles a WebAssembly text file with wabt's wat2wasm
// (apt-get install wabt; `make tools` does).
func Wat2Wasm(wat, out string) error {
	var stderr bytes.Buffer
	cmd := exec.Command("wat2wasm", wat, "-o", out)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devenv: wat2wasm %s: %v: %s (apt-get install wabt)", wat, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
