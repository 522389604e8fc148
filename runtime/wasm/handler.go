// Package wasm is husk's WasmContainer handler. A Wasm container is a
// LinuxContainer (runtime/linux: libcontainer, the same namespaces, cgroup,
// rootfs and mounts as any OCI container) whose process is husk's runner
// (runtime/wasm/runner), which runs the module with wazero's WASI preview1
// against the container's own root. The shim checks and compiles the module
// at create, into the compilation cache it alone writes, and hands the
// container a read-only view of it.
package wasm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/linux"
)

// Name is the handler's name in config and annotations.
const Name = vocab.Wasm

// RunnerBinary is the runner's file name, looked for next to the shim
// binary, then in PATH.
const RunnerBinary = "husk-wasm-runner"

// Handler creates Wasm containers.
type Handler struct {
	linux *linux.Handler
	cache *cache
	// runner is the runner binary's path on the host; runnerErr says why
	// there is none (creating a Wasm container then fails with it).
	runner    string
	runnerErr error
}

// New returns the WasmContainer handler, caching compiled modules in
// DefaultCacheDir.
func New() *Handler {
	return NewWithCache(DefaultCacheDir)
}

// NewWithCache is New with the compilation cache in dir.
func NewWithCache(dir string) *Handler {
	h := &Handler{linux: linux.New()}
	h.runner, h.runnerErr = findRunner()
	h.cache = newCache(dir, h.runner)
	return h
}

func findRunner() (string, error) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), RunnerBinary)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(RunnerBinary); err == nil {
		if p, err := filepath.Abs(p); err == nil {
			return p, nil
		}
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("%w (looked in %v): install it next to the shim (make install)", errNoRunner, tried)
}

// Name returns "wasm".
func (*Handler) Name() string { return Name }

// NewSandbox returns the Wasm part of a pod: Wasm containers are Linux
// containers on the host, so like the Linux handler's it holds nothing.
func (h *Handler) NewSandbox(ctx context.Context, req *handler.SandboxRequest) (handler.Sandbox, error) {
	return sandbox{h}, nil
}

// CleanupSandbox has nothing to do: a Wasm pod's sandbox holds nothing.
func (*Handler) CleanupSandbox(ctx context.Context, stateDir string) error { return nil }

type sandbox struct{ h *Handler }

// Create creates a container whose args[0] must be a Wasm module: anything
// else is an error saying what was found.
func (s sandbox) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	c, err := s.h.linux.CreateWith(ctx, req, &program{h: s.h})
	if err != nil {
		return nil, err
	}
	return newRunnerContainer(c), nil
}

// CreateSmart creates a container that runs as Wasm if its args[0] is a
// Wasm module and natively otherwise (handler.SmartCreator); it says which.
func (s sandbox) CreateSmart(ctx context.Context, req *handler.CreateRequest) (handler.Container, string, error) {
	p := &program{h: s.h, smart: true}
	c, err := s.h.linux.CreateWith(ctx, req, p)
	if err != nil || !p.wasm {
		return c, linux.Name, err
	}
	return newRunnerContainer(c), Name, nil
}

func (sandbox) Close(ctx context.Context) error { return nil }

// Cleanup removes what a dead shim left of a container: the Linux handler's
// cleanup (a Wasm container is a libcontainer container), then its cache
// view.
func (h *Handler) Cleanup(ctx context.Context, sandboxDir, id, bundle string) (int, error) {
	pid, err := h.linux.Cleanup(ctx, sandboxDir, id, bundle)
	if verr := h.cache.removeView(sandboxDir, id); verr != nil && err == nil {
		err = verr
	}
	return pid, err
}
