//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/wasmhost"
)

// rootfsEvent is a small container.rootfs event.
func rootfsEvent() *hooks.ContainerRootfsEvent {
	return &hooks.ContainerRootfsEvent{
		Sandbox:   hooks.Sandbox{ID: "pod-1", Namespace: "default", Handler: "linux"},
		Container: hooks.Container{ID: "ctr-1", Image: "docker.io/library/busybox:latest"},
		Mounts:    []hooks.RootfsMount{{Type: "overlay", Source: "overlay", Options: hooks.List{"lowerdir=/l", "upperdir=/u"}}},
	}
}

// TestR3MisbehavingModules is R3 of TARGETS.md: a module that traps, loops
// forever, allocates 1 GiB, returns garbage or lacks an export gives its
// on_error outcome within its deadline, with an error naming the module;
// then the engine goes on serving: the next call and the other hooks work.
func TestR3MisbehavingModules(t *testing.T) {
	tests := []struct {
		module  string
		cause   error  // the failure's class
		msg     string // in the error
		goDir   string // a Go module instead of a WAT one
		config  map[string]any
		timeout config.Duration // instead of 50ms
	}{
		{module: "trap", cause: wasmhost.ErrTrap, msg: "unreachable"},
		{module: "loop", cause: wasmhost.ErrTimeout, msg: "deadline exceeded (50ms)"},
		{module: "grow", cause: wasmhost.ErrTrap, msg: "out of bounds memory access"},
		{module: "garbage", cause: hooks.ErrBadDecision, msg: "invalid character"},
		{module: "badptr", cause: wasmhost.ErrABI, msg: "outside memory"},
		{module: "huge", cause: wasmhost.ErrOutput, msg: "output too large"},
		{module: "noexport", cause: wasmhost.ErrABI, msg: "does not export function husk_decide"},
		// A Go module's panic ends in a trap, after the runtime printed it.
		// Its second call starts a fresh Go instance (7-11 ms here), which
		// took over 50ms when the machine was loaded: the deadline is not
		// what this case tests.
		{module: "go-panic", goDir: "testdata/misbehave", config: map[string]any{"do": "panic"}, timeout: "5s", cause: wasmhost.ErrTrap, msg: "panic: policy bug at container.rootfs"},
		{module: "go-oom", goDir: "testdata/misbehave", config: map[string]any{"do": "oom"}, timeout: "5s", cause: wasmhost.ErrTrap, msg: "out of memory"},
	}
	for _, tt := range tests {
		for _, onError := range []config.HookOnError{config.HookDeny, config.HookAllow} {
			t.Run(tt.module+"/on_error="+string(onError), func(t *testing.T) {
				path := ""
				if tt.goDir != "" {
					path = goModule(t, tt.goDir)
				} else {
					path = watModule(t, tt.module)
				}
				bad := hook(tt.module, path, hooks.ContainerRootfs)
				bad.OnError, bad.Timeout, bad.MemoryLimit, bad.Config = onError, "50ms", "16MiB", tt.config
				if tt.timeout != "" {
					bad.Timeout = tt.timeout
				}
				after := scripted(t, "after", `{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":true}]}`, hooks.ContainerRootfs)
				other := scripted(t, "other", `{"allow":true}`, hooks.ContainerStart)
				e := newEngine(t, []config.Hook{bad, after, other}, hooks.Options{TolerateLoadErrors: true})

				for call := range 2 { // the second call gets a fresh instance
					start := time.Now()
					out, err := e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
					t.Logf("call %d after %v: allowed %v, cause: %v", call, time.Since(start), out.Allowed, out.Cause)
					if err != nil {
						t.Fatalf("call %d: Run: %v", call, err)
					}
					if onError == config.HookAllow {
						if !out.Allowed || len(out.Patches) != 1 || out.Patches[0].Hook != "after" {
							t.Fatalf("call %d: outcome %+v, want allowed with the next hook's patch", call, out)
						}
						continue
					}
					if out.Allowed || out.Hook != tt.module || !errors.Is(out.Cause, tt.cause) {
						t.Fatalf("call %d: outcome %+v, want denied by %s with cause %v", call, out, tt.module, tt.cause)
					}
					err = out.Err()
					if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), `hook "`+tt.module+`" failed at container.rootfs`) || !strings.Contains(err.Error(), tt.msg) {
						t.Fatalf("call %d: error %q, want a permission denied naming the hook and saying %q", call, err, tt.msg)
					}
				}
				// The engine serves on: a point where only a good hook runs.
				out, err := e.Run(context.Background(), hooks.ContainerStart, &hooks.ContainerStartEvent{})
				if err != nil || !out.Allowed {
					t.Fatalf("other point after the failures: %+v, %v", out, err)
				}
			})
		}
	}
}

func TestNewFailsOnLoadErrors(t *testing.T) {
	good := scripted(t, "good", `{"allow":true}`, hooks.ContainerCreate)
	missing := hook("missing", "/nonexistent/policy.wasm", hooks.ContainerCreate)
	pinned := hook("pinned", watModule(t, "trap"), hooks.ContainerCreate)
	pinned.SHA256 = strings.Repeat("0", 64)
	noExport := hook("no-export", watModule(t, "noexport"), hooks.ContainerCreate)
	initFails := hook("init-fails", watModule(t, "initfail"), hooks.ContainerCreate)
	initFails.Config = map[string]any{"images": []any{}}

	_, err := hooks.New(context.Background(), []config.Hook{good, missing, pinned, noExport, initFails}, hooks.Options{})
	if err == nil {
		t.Fatal("New succeeded")
	}
	for _, want := range []struct {
		hook  string
		class error
		cause error
		msg   string
	}{
		{"missing", errdefs.ErrNotFound, os.ErrNotExist, `hook "missing": module /nonexistent/policy.wasm: open /nonexistent/policy.wasm: no such file or directory`},
		{"pinned", errdefs.ErrInvalidArgument, hooks.ErrDigestMismatch, `hook "pinned": module ` + pinned.Module + `: module does not match its sha256 pin: sha256 is `},
		{"no-export", errdefs.ErrInvalidArgument, wasmhost.ErrABI, `hook "no-export": module ` + noExport.Module + `: module "no-export": load: hook ABI violation: does not export function husk_decide`},
		{"init-fails", errdefs.ErrInvalidArgument, wasmhost.ErrInit, `module "init-fails": init: module rejected its configuration: missing key: images`},
	} {
		var found *hooks.LoadError
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if le, ok := e.(*hooks.LoadError); ok && le.Hook == want.hook {
				found = le
			}
		}
		if found == nil {
			t.Errorf("no LoadError for hook %s in %v", want.hook, err)
			continue
		}
		if !errors.Is(found, want.class) || !errors.Is(found, want.cause) || !strings.Contains(found.Error(), want.msg) {
			t.Errorf("hook %s: %q (class %v, cause %v), want %v, %v and %q", want.hook, found, errors.Is(found, want.class), errors.Is(found, want.cause), want.class, want.cause, want.msg)
		}
	}
	if strings.Contains(err.Error(), `"good"`) {
		t.Errorf("the good hook is reported: %v", err)
	}
}

func TestNewChecksTheConfig(t *testing.T) {
	h := hook("x", "/x.wasm", "container.craete")
	_, err := hooks.New(context.Background(), []config.Hook{h}, hooks.Options{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `hook[0].points: unknown point "container.craete"`) {
		t.Fatalf("New: %v, want an invalid argument about the point", err)
	}
}

func TestSHA256PinMatches(t *testing.T) {
	h := scripted(t, "pinned", `{"allow":true}`, hooks.SandboxVM)
	b, err := os.ReadFile(h.Module)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	h.SHA256 = hex.EncodeToString(sum[:])
	e := newEngine(t, []config.Hook{h}, hooks.Options{})
	if out, err := e.Run(context.Background(), hooks.SandboxVM, &hooks.SandboxVMEvent{}); err != nil || !out.Allowed {
		t.Fatalf("Run: %+v, %v", out, err)
	}
}

// TestTolerateLoadErrors: a broken module does not stop New, and its
// points get its on_error outcome with the load error.
func TestTolerateLoadErrors(t *testing.T) {
	denies := hook("missing-deny", "/nonexistent/a.wasm", hooks.SandboxCreate)
	allows := hook("missing-allow", "/nonexistent/b.wasm", hooks.SandboxDelete)
	allows.OnError = config.HookAllow
	e := newEngine(t, []config.Hook{denies, allows}, hooks.Options{TolerateLoadErrors: true})
	out, err := e.Run(context.Background(), hooks.SandboxCreate, &hooks.SandboxCreateEvent{})
	if err != nil || out.Allowed || !errors.Is(out.Cause, errdefs.ErrNotFound) {
		t.Errorf("sandbox.create: %+v, %v; want denied with the load error", out, err)
	}
	out, err = e.Run(context.Background(), hooks.SandboxDelete, &hooks.SandboxDeleteEvent{})
	if err != nil || !out.Allowed {
		t.Errorf("sandbox.delete: %+v, %v; want allowed (on_error = allow)", out, err)
	}
}

// TestStart: Start returns before the modules load; a call waits for the
// modules of its chain and decides as with New; a broken module gets its
// on_error outcome; a call whose context ends while it waits fails with
// the context's error; Close right after Start waits for the loads.
func TestStart(t *testing.T) {
	ctx := context.Background()
	cfg := []config.Hook{
		builtin(t, "deny-privileged", hooks.ContainerCreate),
		hook("missing", "/nonexistent/a.wasm", hooks.SandboxCreate),
	}
	opts := hooks.Options{CacheDir: cacheDir()}

	e, err := hooks.Start(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Hooks(hooks.ContainerCreate); len(got) != 1 || got[0] != "deny-privileged" {
		t.Errorf("Hooks before the loads end: %v", got)
	}
	out, err := e.Run(ctx, hooks.ContainerCreate, createEvent(true))
	if err != nil || out.Allowed || out.Hook != "deny-privileged" || out.Cause != nil {
		t.Errorf("privileged: %+v, %v; want denied by deny-privileged", out, err)
	}
	out, err = e.Run(ctx, hooks.SandboxCreate, &hooks.SandboxCreateEvent{})
	if err != nil || out.Allowed || !errors.Is(out.Cause, errdefs.ErrNotFound) {
		t.Errorf("sandbox.create: %+v, %v; want denied with the load error", out, err)
	}
	if err := e.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}

	e, err = hooks.Start(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Run(cctx, hooks.ContainerCreate, createEvent(false)); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a canceled context: %v", err)
	}
	if err := e.Close(ctx); err != nil {
		t.Errorf("Close right after Start: %v", err)
	}

	bad := []config.Hook{hook("Bad Name", "/x.wasm", hooks.ContainerCreate)}
	if _, err := hooks.Start(ctx, bad, opts); err == nil {
		t.Error("Start with a bad config succeeded")
	}
}

// TestStartDefersLateModules: with Start, a module asked only after a
// container started (process.exec, container.delete) is not loaded
// before its first call: not while the create path's modules load, not
// by a create; its first call loads it (its file may even appear only
// then) and decides. A module serving an early point as well loads at
// once. New still loads every module.
func TestStartDefersLateModules(t *testing.T) {
	ctx := context.Background()
	late := filepath.Join(t.TempDir(), "exec.wasm") // written after the create
	execHook := scripted(t, "exec-only", `{"allow":false,"reason":"no exec"}`, hooks.ProcessExec)
	execHook.Module = late
	cfg := []config.Hook{
		scripted(t, "create", `{"allow":true}`, hooks.ContainerCreate),
		execHook,
		scripted(t, "delete-only", `{"allow":true}`, hooks.ContainerDelete, hooks.SandboxDelete),
		scripted(t, "exec-and-create", `{"allow":true}`, hooks.ProcessExec, hooks.ContainerCreate),
	}
	e, err := hooks.Start(ctx, cfg, hooks.Options{CacheDir: cacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	out, err := e.Run(ctx, hooks.ContainerCreate, createEvent(false))
	if err != nil || !out.Allowed {
		t.Fatalf("container.create: %+v, %v", out, err)
	}
	for name, want := range map[string]bool{"create": true, "exec-and-create": true, "exec-only": false, "delete-only": false} {
		if got := hooks.LoadStarted(e, name); got != want {
			t.Errorf("after the create, %s's load started: %v, want %v", name, got, want)
		}
	}
	wasm, err := os.ReadFile(watModule(t, "decision"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(late, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	ctr := hooks.Container{ID: "c1"}
	out, err = e.Run(ctx, hooks.ProcessExec, &hooks.ProcessExecEvent{Container: ctr, ExecID: "e1", Process: hooks.Process{Args: hooks.List{"/bin/ls"}, Cwd: "/"}})
	if err != nil || out.Allowed || out.Hook != "exec-only" || out.Reason != "no exec" || out.Cause != nil {
		t.Errorf("process.exec: %+v, %v; want denied by exec-only's decision (its module loaded at the first exec)", out, err)
	}
	if hooks.LoadStarted(e, "delete-only") {
		t.Error("delete-only's load started at an exec")
	}
	out, err = e.Run(ctx, hooks.ContainerDelete, &hooks.ContainerDeleteEvent{Container: ctr})
	if err != nil || !out.Allowed || !hooks.LoadStarted(e, "delete-only") {
		t.Errorf("container.delete: %+v, %v; want allowed by delete-only, loaded", out, err)
	}

	n := newEngine(t, cfg[2:], hooks.Options{})
	if !hooks.LoadStarted(n, "delete-only") {
		t.Error("New did not load delete-only")
	}
}

// TestLoadOrder: modules load by the first point they serve in a pod's
// life, ties in config order.
func TestLoadOrder(t *testing.T) {
	cfg := []config.Hook{
		{Points: []string{"sandbox.delete"}},
		{Points: []string{"process.exec", "container.create"}},
		{Points: []string{"container.rootfs"}},
		{Points: []string{"container.create"}},
		{Points: []string{"sandbox.create"}},
	}
	if got, want := hooks.LoadOrder(cfg), []int{4, 1, 3, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("load order %v, want %v", got, want)
	}
}

// TestCloseWaitsForCalls: Close and calls racing it never meet a closed
// module: a call in flight ends first, a later one fails with ErrClosed.
func TestCloseWaitsForCalls(t *testing.T) {
	ctx := context.Background()
	e, err := hooks.Start(ctx, []config.Hook{builtin(t, "deny-privileged", hooks.ContainerCreate)}, hooks.Options{CacheDir: cacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, hooks.ContainerCreate, createEvent(false)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for range cap(done) {
		go func() {
			for {
				out, err := e.Run(ctx, hooks.ContainerCreate, createEvent(false))
				if err != nil {
					if !errors.Is(err, hooks.ErrClosed) {
						done <- err
					} else {
						done <- nil
					}
					return
				}
				if !out.Allowed {
					done <- errors.New("an unprivileged container was denied")
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range cap(done) {
		if err := <-done; err != nil {
			t.Errorf("call racing Close: %v", err)
		}
	}
	if err := e.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
