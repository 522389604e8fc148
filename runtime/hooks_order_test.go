package runtime

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// Changing hooks, then checking hooks that see the final result: these
// tests write every checking hook before the changing hook that tries to
// get past it, so that config order alone would let the change through.

// checkHook is a checking hook at point that allows only when the event's
// value at path (member names and indexes) is want, as JSON text
// (hooks/testdata/expect).
func checkHook(t *testing.T, name, point string, want any, path ...string) config.Hook {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Go policy")
	}
	module := filepath.Join(t.TempDir(), "expect.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := build.Go(ctx, filepath.Join("..", "hooks", "testdata", "expect"), module); err != nil {
		t.Fatalf("building the expect policy: %v", err)
	}
	p := make([]any, len(path))
	for i, s := range path {
		p[i] = s
	}
	return config.Hook{Name: name, Module: module, Points: []string{point}, Kind: config.HookCheck,
		Config: map[string]any{"path": p, "want": want}}.WithDefaults()
}

// changeHook is a changing hook at point answering decision.
func changeHook(t *testing.T, name, decision, point string) config.Hook {
	t.Helper()
	h := decisionHook(t, decision, point)
	h.Name, h.Kind = name, config.HookChange
	return h
}

// createUnder creates container "pod", alone in its virt pod, with the
// given hooks, after shape changes its spec; it returns the handler and
// the create's error.
func createUnder(t *testing.T, shape func(*specs.Spec), hs ...config.Hook) (*vmHandler, error) {
	t.Helper()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	cfg.Hooks = hs
	h := &vmHandler{}
	m := NewManager(fakeHandler("linux"), h)
	req := virtPodReq(t, &cfg, "pod", "sandbox")
	req.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
	if shape != nil {
		shape(req.Spec)
	}
	_, err := m.Create(context.Background(), req, &recorder{})
	return h, err
}

// refusedAfter checks that err is the denial of checking hook name at
// container.create, asked again because point changed the container, and
// that no container was created.
func refusedAfter(t *testing.T, h *vmHandler, err error, name, point, reason string) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("create: %v, want %q's denial", err, name)
	}
	want := `hook "` + name + `" denied container.create (as changed at ` + point + `): ` + reason
	if err.Error() != want {
		t.Errorf("create error\n%s\nwant\n%s", err, want)
	}
	if h.created != 0 {
		t.Errorf("the handler created %d containers, want none", h.created)
	}
}

// TestStartChangeRecheckedAtCreate: a changing hook at container.start
// that makes the process root is refused by the checking hook of
// container.create that allowed only uid 1000, which sees the spec again.
func TestStartChangeRecheckedAtCreate(t *testing.T) {
	noRoot := checkHook(t, "no-root", "container.create", 1000, "spec", "process", "user", "uid")
	if _, err := createUnder(t, nil, noRoot); err != nil {
		t.Fatalf("uid 1000 without a change: %v", err)
	}
	makeRoot := changeHook(t, "make-root", `{"allow":true,"patch":[{"op":"replace","path":"/process/user/uid","value":0}]}`, "container.start")
	h, err := createUnder(t, nil, noRoot, makeRoot)
	refusedAfter(t, h, err, "no-root", "container.start", "expected 1000 at /spec/process/user/uid, got 0")

	// A change the checking hook approves goes through.
	keep := changeHook(t, "add-env", `{"allow":true,"patch":[{"op":"add","path":"/process/env/-","value":"TZ=UTC"}]}`, "container.start")
	if _, err := createUnder(t, nil, noRoot, keep); err != nil {
		t.Fatalf("a change the check approves: %v", err)
	}
}

// TestMountChangeRecheckedAtCreate: a changing hook at container.mount
// that makes a read-only bind writable is refused by container.create's
// checking hook.
func TestMountChangeRecheckedAtCreate(t *testing.T) {
	bind := func(s *specs.Spec) {
		s.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}}}
	}
	roBinds := checkHook(t, "ro-binds", "container.create", []any{"rbind", "ro"}, "spec", "mounts", "0", "options")
	makeRW := changeHook(t, "make-rw", `{"allow":true,"patch":[{"op":"replace","path":"/mount/options/1","value":"rw"}]}`, "container.mount")
	h, err := createUnder(t, bind, roBinds, makeRW)
	refusedAfter(t, h, err, "ro-binds", "container.mount", `expected ["rbind","ro"] at /spec/mounts/0/options, got ["rbind","rw"]`)
}

// TestCgroupsChangeRecheckedAtCreate: a changing hook at
// container.cgroups that lifts a memory limit is refused by
// container.create's checking hook.
func TestCgroupsChangeRecheckedAtCreate(t *testing.T) {
	limit := int64(256 << 20)
	limited := func(s *specs.Spec) {
		s.Linux = &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}}
	}
	capped := checkHook(t, "capped", "container.create", limit, "spec", "linux", "resources", "memory", "limit")
	lift := changeHook(t, "lift", `{"allow":true,"patch":[{"op":"replace","path":"/resources/memory/limit","value":-1}]}`, "container.cgroups")
	h, err := createUnder(t, limited, capped, lift)
	refusedAfter(t, h, err, "capped", "container.cgroups", "expected 268435456 at /spec/linux/resources/memory/limit, got -1")
}

// TestRootfsChangeRecheckedAtCreate: a changing hook at container.rootfs
// (asked by the handler, after the runtime's points) that makes a
// read-only root writable is refused by container.create's checking hook
// before the handler attaches it.
func TestRootfsChangeRecheckedAtCreate(t *testing.T) {
	readonly := func(s *specs.Spec) { s.Root.Readonly = true }
	roRoot := checkHook(t, "ro-root", "container.create", true, "spec", "root", "readonly")
	makeRW := changeHook(t, "make-rw", `{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":false}]}`, "container.rootfs")
	h, err := createUnder(t, readonly, roRoot, makeRW)
	// runtime-spec leaves out a false readonly: the value is missing.
	refusedAfter(t, h, err, "ro-root", "container.rootfs", "expected true at /spec/root/readonly, got ")
	if len(h.rootfs) != 0 {
		t.Errorf("the handler attached %+v", h.rootfs)
	}
}

// TestSandboxCreateCheckSeesFinalHandler: a changing hook at
// sandbox.create that moves a pod from virt to linux (no VM) is seen by
// the checking hook, written first, that allows only virt.
func TestSandboxCreateCheckSeesFinalHandler(t *testing.T) {
	onlyVirt := checkHook(t, "only-virt", "sandbox.create", "virt", "sandbox", "handler")
	toLinux := changeHook(t, "to-linux", `{"allow":true,"patch":[{"op":"replace","path":"/sandbox/handler","value":"linux"}]}`, "sandbox.create")
	h, err := createUnder(t, nil, onlyVirt, toLinux)
	want := `hook "only-virt" denied sandbox.create: expected "virt" at /sandbox/handler, got "linux"`
	if !errors.Is(err, errdefs.ErrPermissionDenied) || err.Error() != want {
		t.Fatalf("create: %v, want %s", err, want)
	}
	if h.opened != 0 {
		t.Errorf("%d VMs set up for a refused pod", h.opened)
	}
	if _, err := createUnder(t, nil, onlyVirt); err != nil {
		t.Fatalf("a virt pod without the change: %v", err)
	}
}

// TestExecCheckSeesFinalProcess: a checking hook at process.exec sees the
// user a changing hook at the same point gave the exec, though it is
// written first.
func TestExecCheckSeesFinalProcess(t *testing.T) {
	ctx := context.Background()
	noRoot := checkHook(t, "no-root-exec", "process.exec", 1000, "process", "user", "uid")
	makeRoot := changeHook(t, "make-root", `{"allow":true,"patch":[{"op":"replace","path":"/process/user/uid","value":0}]}`, "process.exec")
	m, task := hookedTask(t, noRoot, makeRoot)
	defer m.Deleted(ctx, task)
	err := task.Exec(ctx, "e1", &specs.Process{Args: []string{"id"}, User: specs.User{UID: 1000, GID: 1000}}, handler.Stdio{})
	want := `hook "no-root-exec" denied process.exec: expected 1000 at /process/user/uid, got 0`
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), want) {
		t.Fatalf("exec: %v, want %s", err, want)
	}
}
