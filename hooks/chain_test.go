//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
)

const setReadonly = `{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":true}]}`

// expectReadonly returns a Go hook that allows only if /readonly is true.
func expectReadonly(t *testing.T, name string) config.Hook {
	h := hook(name, goModule(t, "testdata/expect"), hooks.ContainerRootfs)
	h.Config = map[string]any{"path": []any{"readonly"}, "want": true}
	return h
}

// TestChainOrderAndPatchVisibility: each hook sees the event as patched by
// the hooks before it, so order matters.
func TestChainOrderAndPatchVisibility(t *testing.T) {
	patch := scripted(t, "set-readonly", setReadonly, hooks.ContainerRootfs)
	check := expectReadonly(t, "want-readonly")

	e := newEngine(t, []config.Hook{patch, check}, hooks.Options{})
	out, err := e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || !out.Allowed {
		t.Fatalf("patch then check: %+v, %v; want allowed", out, err)
	}
	if len(out.Patches) != 1 || out.Patches[0].Hook != "set-readonly" || string(out.Patches[0].Ops[0].Value) != "true" {
		t.Errorf("patches %+v, want set-readonly's", out.Patches)
	}
	ev := rootfsEvent()
	if err := out.Decode(ev); err != nil || !ev.Readonly || ev.Container.ID != "ctr-1" {
		t.Errorf("Decode: %+v, %v; want readonly and the rest kept", ev, err)
	}
	if got := e.Hooks(hooks.ContainerRootfs); strings.Join(got, ",") != "set-readonly,want-readonly" {
		t.Errorf("Hooks = %q", got)
	}

	// Two checking hooks: the second is asked after the first, and a
	// denial stops the chain.
	wantWritable := expectReadonly(t, "want-writable")
	wantWritable.Config["want"] = false
	e = newEngine(t, []config.Hook{check, wantWritable}, hooks.Options{})
	out, err = e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || out.Allowed || out.Hook != "want-readonly" || out.Reason != "expected true at /readonly, got false" {
		t.Fatalf("check then check: %+v, %v; want denied by want-readonly", out, err)
	}
}

// TestChangingHooksRunBeforeCheckingHooks: a changing hook written after a
// checking hook in the config is still asked before it, so the checking
// hook sees the event as the step will take it, patch included.
func TestChangingHooksRunBeforeCheckingHooks(t *testing.T) {
	patch := scripted(t, "set-readonly", setReadonly, hooks.ContainerRootfs)
	check := expectReadonly(t, "want-readonly")
	unset := scripted(t, "set-writable", `{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":false}]}`, hooks.ContainerRootfs)
	wantWritable := expectReadonly(t, "want-writable")
	wantWritable.Config["want"] = false

	e := newEngine(t, []config.Hook{check, patch}, hooks.Options{})
	if got := e.Hooks(hooks.ContainerRootfs); strings.Join(got, ",") != "set-readonly,want-readonly" {
		t.Errorf("Hooks = %q, want the changing hook first", got)
	}
	out, err := e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || !out.Allowed || len(out.Patches) != 1 || out.Patches[0].Hook != "set-readonly" {
		t.Fatalf("check written before patch: %+v, %v; want the patch applied, then the check allowing it", out, err)
	}

	// The checking hook sees the last changing hook's result: a change
	// written last undoes the first, and the check written first denies it.
	e = newEngine(t, []config.Hook{check, patch, wantWritable, unset}, hooks.Options{})
	if got := e.Hooks(hooks.ContainerRootfs); strings.Join(got, ",") != "set-readonly,set-writable,want-readonly,want-writable" {
		t.Errorf("Hooks = %q, want changing hooks then checking hooks, each in config order", got)
	}
	out, err = e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || out.Allowed || out.Hook != "want-readonly" || out.Reason != "expected true at /readonly, got false" {
		t.Fatalf("a change undone by a later change: %+v, %v; want denied by want-readonly", out, err)
	}
}

// TestCheckingHookMayNotPatch: a checking hook that answers with a patch
// has failed: its on_error decides (deny by default), and its patch is
// never applied.
func TestCheckingHookMayNotPatch(t *testing.T) {
	sneaky := scripted(t, "sneaky", setReadonly, hooks.ContainerRootfs)
	sneaky.Kind = config.HookCheck

	e := newEngine(t, []config.Hook{sneaky}, hooks.Options{})
	out, err := e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || out.Allowed || out.Hook != "sneaky" || !errors.Is(out.Cause, hooks.ErrCheckPatched) || out.Patched() {
		t.Fatalf("checking hook patching: %+v, %v; want denied with ErrCheckPatched", out, err)
	}
	if msg := out.Err().Error(); !strings.Contains(msg, `kind = "change"`) {
		t.Errorf("the error does not say how to let the hook patch: %s", msg)
	}

	sneaky.OnError = config.HookAllow
	e = newEngine(t, []config.Hook{sneaky}, hooks.Options{})
	out, err = e.Run(context.Background(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || !out.Allowed || out.Patched() || !strings.Contains(string(out.Event), `"readonly":false`) {
		t.Fatalf("checking hook patching, on_error = allow: %+v, %v; want allowed, unpatched", out, err)
	}
}

// TestRecheckAsksOnlyCheckingHooks: Recheck asks a point's checking hooks
// about an event a later point changed, never its changing hooks, and a
// denial names the later point.
func TestRecheckAsksOnlyCheckingHooks(t *testing.T) {
	patch := scripted(t, "set-readonly", setReadonly, hooks.ContainerRootfs)
	check := expectReadonly(t, "want-readonly")

	e := newEngine(t, []config.Hook{patch, check}, hooks.Options{})
	if !e.Checks(hooks.ContainerRootfs) || e.Checks(hooks.ContainerCreate) {
		t.Errorf("Checks: rootfs %v, create %v", e.Checks(hooks.ContainerRootfs), e.Checks(hooks.ContainerCreate))
	}
	out, err := e.Recheck(context.Background(), hooks.ContainerRootfs, rootfsEvent(), hooks.ContainerStart)
	if err != nil || out.Allowed || out.Patched() || out.Hook != "want-readonly" || out.After != hooks.ContainerStart {
		t.Fatalf("Recheck: %+v, %v; want denied by want-readonly, the changing hook not asked", out, err)
	}
	want := `hook "want-readonly" denied container.rootfs (as changed at container.start): expected true at /readonly, got false`
	if got := out.Err().Error(); got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if _, err := e.Recheck(context.Background(), hooks.ContainerRootfs, rootfsEvent(), ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Recheck after no point: %v, want invalid argument", err)
	}
}

// TestEnforceAndAudit: an enforcing denial stops the chain with the
// module's reason and is logged with the ids; an auditing hook's denial
// and patch are only logged.
func TestEnforceAndAudit(t *testing.T) {
	auditDeny := scripted(t, "audit-deny", `{"allow":false,"reason":"would not allow"}`, hooks.ContainerRootfs)
	auditDeny.Mode = config.HookAudit
	auditPatch := scripted(t, "audit-patch", setReadonly, hooks.ContainerRootfs)
	auditPatch.Mode = config.HookAudit
	auditFail := hook("audit-fail", watModule(t, "trap"), hooks.ContainerRootfs)
	auditFail.Mode = config.HookAudit // on_error = deny, but audit never stops a step
	enforce := scripted(t, "enforce-deny", `{"allow":false,"reason":"no rootfs for you"}`, hooks.ContainerRootfs)
	never := scripted(t, "never-asked", `{"allow":true}`, hooks.ContainerRootfs)

	var log logRecorder
	e := newEngine(t, []config.Hook{auditDeny, auditPatch, auditFail}, hooks.Options{})
	out, err := e.Run(log.ctx(), hooks.ContainerRootfs, rootfsEvent())
	if err != nil || !out.Allowed || out.Patched() {
		t.Fatalf("audit chain: %+v, %v; want allowed, unpatched", out, err)
	}
	if !strings.Contains(string(out.Event), `"readonly":false`) {
		t.Errorf("audit patch applied: %s", out.Event)
	}
	for _, msg := range []string{"audit: hook would deny", "audit: hook would patch", "hook failed; going on"} {
		if _, ok := log.find(msg); !ok {
			t.Errorf("no %q log line", msg)
		}
	}

	e = newEngine(t, []config.Hook{auditDeny, enforce, never}, hooks.Options{})
	var calls sync.Map
	e2 := newEngine(t, []config.Hook{auditDeny, enforce, never}, hooks.Options{Observe: func(c hooks.Call) { calls.Store(c.Hook, c.Result) }})
	for _, eng := range []*hooks.Engine{e, e2} {
		out, err = eng.Run(log.ctx(), hooks.ContainerRootfs, rootfsEvent())
		if err != nil || out.Allowed || out.Hook != "enforce-deny" || out.Reason != "no rootfs for you" || out.Cause != nil {
			t.Fatalf("enforce chain: %+v, %v; want denied by enforce-deny", out, err)
		}
	}
	err = out.Err()
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !errors.Is(err, hooks.ErrDenied) || err.Error() != `hook "enforce-deny" denied container.rootfs: no rootfs for you` {
		t.Errorf("Err() = %v", err)
	}
	attrs, ok := log.find("hook denied")
	want := map[string]string{"level": "WARN", "point": "container.rootfs", "hook": "enforce-deny", "reason": "no rootfs for you", "sandbox": "pod-1", "namespace": "default", "container": "ctr-1"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("denial log %s = %q, want %q (all: %v, found %v)", k, attrs[k], v, attrs, ok)
		}
	}
	for hook, result := range map[string]hooks.Result{"audit-deny": hooks.ResultDeny, "enforce-deny": hooks.ResultDeny} {
		if got, _ := calls.Load(hook); got != result {
			t.Errorf("observed %s: %v, want %v", hook, got, result)
		}
	}
	if _, ok := calls.Load("never-asked"); ok {
		t.Error("the hook after an enforcing denial was called")
	}
}

// TestPatchRules: a patch outside the point's rules, or one that does not
// apply or fit the schema, is the module failing: rejected, logged, and
// handled by on_error; the event is unchanged.
func TestPatchRules(t *testing.T) {
	tests := []struct {
		name  string
		point hooks.Point
		patch string
		cause error
		msg   string
	}{
		{"outside the allowed paths", hooks.ContainerRootfs, `[{"op":"replace","path":"/container/image","value":"x"}]`,
			hooks.ErrPatchNotAllowed, "a patch may only change /readonly"},
		{"a prefix that is not a path prefix", hooks.ContainerRootfs, `[{"op":"add","path":"/readonlyx","value":true}]`,
			hooks.ErrPatchNotAllowed, "a patch may only change /readonly"},
		{"remove an allowed path itself", hooks.ContainerRootfs, `[{"op":"remove","path":"/readonly"}]`,
			hooks.ErrPatchNotAllowed, "/readonly itself cannot be removed"},
		{"move from outside", hooks.ContainerStart, `[{"op":"move","from":"/process/args","path":"/process/env"}]`,
			hooks.ErrPatchNotAllowed, "from /process/args"},
		{"copy from outside", hooks.ContainerStart, `[{"op":"copy","from":"/container/id","path":"/process/env/-"}]`,
			hooks.ErrPatchNotAllowed, "from /container/id"},
		{"audit-only point", hooks.ContainerDelete, `[{"op":"add","path":"/status/exit_code","value":0}]`,
			hooks.ErrPatchNotAllowed, "nothing may change at this point"},
		{"operation not allowed there", hooks.SandboxNetwork, `[{"op":"add","path":"/interfaces/-","value":{"name":"evil0"}}]`,
			hooks.ErrPatchNotAllowed, "only remove allowed under /interfaces"},
		{"wrong type for the schema", hooks.ContainerRootfs, `[{"op":"replace","path":"/readonly","value":"yes"}]`,
			hooks.ErrBadPatch, "does not fit the container.rootfs schema"},
		{"unknown member under an allowed path", hooks.ContainerStart, `[{"op":"add","path":"/process/user/root","value":true}]`,
			hooks.ErrBadPatch, `/process/user: unknown member "root"`},
		// A patch that names no uid must not run the process as root
		// (encoding/json would decode each of these to uid 0, gid 0).
		{"user replaced by null", hooks.ContainerStart, `[{"op":"replace","path":"/process/user","value":null}]`,
			hooks.ErrBadPatch, "/process/user: null, where the schema has a object"},
		{"user replaced by {}", hooks.ProcessExec, `[{"op":"replace","path":"/process/user","value":{}}]`,
			hooks.ErrBadPatch, `/process/user: member "uid" is missing`},
		{"uid removed", hooks.ContainerStart, `[{"op":"remove","path":"/process/user/uid"}]`,
			hooks.ErrBadPatch, `/process/user: member "uid" is missing`},
		{"uid null", hooks.ContainerStart, `[{"op":"replace","path":"/process/user/uid","value":null}]`,
			hooks.ErrBadPatch, "/process/user/uid: null"},
		{"spec user replaced by null", hooks.ContainerCreate, `[{"op":"replace","path":"/spec/process/user","value":null}]`,
			hooks.ErrBadPatch, "/spec/process/user: null"},
		{"member names in another case", hooks.ContainerStart, `[{"op":"replace","path":"/process/user","value":{"uid":1000,"gid":1000,"UID":0,"GID":0}}]`,
			hooks.ErrBadPatch, `names are case-sensitive`},
		{"path does not exist", hooks.ContainerStart, `[{"op":"replace","path":"/process/env/3","value":"A=1"}]`,
			hooks.ErrBadPatch, "array index 3 out of range"},
		{"failed test", hooks.ContainerStart, `[{"op":"test","path":"/container/id","value":"other"},{"op":"add","path":"/process/env/-","value":"A=1"}]`,
			hooks.ErrBadPatch, "test failed"},
	}
	events := map[hooks.Point]hooks.Event{
		hooks.ContainerRootfs: rootfsEvent(),
		hooks.ContainerStart:  &hooks.ContainerStartEvent{Container: hooks.Container{ID: "c"}, Process: hooks.Process{Args: hooks.List{"/bin/sh"}, User: hooks.User{UID: 1000, GID: 1000}}},
		hooks.ProcessExec:     &hooks.ProcessExecEvent{Container: hooks.Container{ID: "c"}, Process: hooks.Process{Args: hooks.List{"/bin/sh"}, User: hooks.User{UID: 1000, GID: 1000}}},
		hooks.ContainerCreate: &hooks.ContainerCreateEvent{Spec: &specs.Spec{Version: "1.2.0", Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"sh"}, Cwd: "/", User: specs.User{UID: 1000, GID: 1000}}}},
		hooks.ContainerDelete: &hooks.ContainerDeleteEvent{},
		hooks.SandboxNetwork:  &hooks.SandboxNetworkEvent{Interfaces: []hooks.Interface{{Name: "eth0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := scripted(t, "patcher", `{"allow":true,"patch":`+tt.patch+`}`, tt.point)
			var log logRecorder
			e := newEngine(t, []config.Hook{h}, hooks.Options{})
			out, err := e.Run(log.ctx(), tt.point, events[tt.point])
			if err != nil || out.Allowed || !errors.Is(out.Cause, tt.cause) || !strings.Contains(out.Reason, tt.msg) {
				t.Fatalf("outcome %+v, %v; want denied with cause %v saying %q", out, err, tt.cause, tt.msg)
			}
			if attrs, ok := log.find("hook failed; denying"); !ok || !strings.Contains(attrs["error"], tt.msg) {
				t.Errorf("log: %v", attrs)
			}

			h.OnError = config.HookAllow
			e = newEngine(t, []config.Hook{h}, hooks.Options{})
			out, err = e.Run(context.Background(), tt.point, events[tt.point])
			want, _ := json.Marshal(events[tt.point])
			if err != nil || !out.Allowed || out.Patched() || string(out.Event) != string(want) {
				t.Fatalf("on_error = allow: %+v, %v; want allowed with the event unchanged", out, err)
			}
		})
	}
}

// TestPatchAllowed covers patches each point's rules let through.
func TestPatchAllowed(t *testing.T) {
	spec := &specs.Spec{Version: "1.2.0", Hostname: "box", Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"}}
	tests := []struct {
		point hooks.Point
		event hooks.Event
		patch string
		check func(t *testing.T, out hooks.Outcome)
	}{
		{hooks.ContainerCreate, &hooks.ContainerCreateEvent{Spec: spec}, `[{"op":"remove","path":"/spec/hostname"},{"op":"add","path":"/spec/root/readonly","value":true}]`,
			func(t *testing.T, out hooks.Outcome) {
				ev := &hooks.ContainerCreateEvent{Spec: spec}
				if err := out.Decode(ev); err != nil || ev.Spec.Hostname != "" || !ev.Spec.Root.Readonly || ev.Spec.Process.Args[0] != "sh" {
					t.Errorf("Decode: %+v, %v", ev.Spec, err)
				}
				if spec.Hostname != "box" {
					t.Error("Decode changed the spec passed to Run")
				}
			}},
		{hooks.ContainerStart, &hooks.ContainerStartEvent{Process: hooks.Process{Env: nil}}, `[{"op":"add","path":"/process/env/-","value":"A=1"},{"op":"replace","path":"/process/user/uid","value":1000}]`,
			func(t *testing.T, out hooks.Outcome) {
				var ev hooks.ContainerStartEvent
				if err := out.Decode(&ev); err != nil || len(ev.Process.Env) != 1 || ev.Process.User.UID != 1000 {
					t.Errorf("Decode: %+v, %v", ev.Process, err)
				}
			}},
		{hooks.SandboxCreate, &hooks.SandboxCreateEvent{Sandbox: hooks.Sandbox{Handler: "linux"}}, `[{"op":"replace","path":"/sandbox/handler","value":"virt"},{"op":"add","path":"/sandbox/annotations/io.husk~1x","value":"1"}]`,
			func(t *testing.T, out hooks.Outcome) {
				var ev hooks.SandboxCreateEvent
				if err := out.Decode(&ev); err != nil || ev.Sandbox.Handler != "virt" || ev.Sandbox.Annotations["io.husk/x"] != "1" {
					t.Errorf("Decode: %+v, %v", ev.Sandbox, err)
				}
			}},
		{hooks.SandboxNetwork, &hooks.SandboxNetworkEvent{Interfaces: []hooks.Interface{{Name: "eth0"}, {Name: "eth1"}}}, `[{"op":"remove","path":"/interfaces/0"}]`,
			func(t *testing.T, out hooks.Outcome) {
				var ev hooks.SandboxNetworkEvent
				if err := out.Decode(&ev); err != nil || len(ev.Interfaces) != 1 || ev.Interfaces[0].Name != "eth1" {
					t.Errorf("Decode: %+v, %v", ev.Interfaces, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(string(tt.point), func(t *testing.T) {
			e := newEngine(t, []config.Hook{scripted(t, "p", `{"allow":true,"patch":`+tt.patch+`}`, tt.point)}, hooks.Options{})
			out, err := e.Run(context.Background(), tt.point, tt.event)
			if err != nil || !out.Allowed || !out.Patched() {
				t.Fatalf("%+v, %v; want allowed and patched", out, err)
			}
			tt.check(t, out)
		})
	}
}

func TestRunErrors(t *testing.T) {
	e := newEngine(t, []config.Hook{scripted(t, "a", `{"allow":true}`, hooks.ContainerRootfs)}, hooks.Options{})
	tests := []struct {
		name  string
		point hooks.Point
		event any
		msg   string
	}{
		{"unknown point", "container.craete", rootfsEvent(), `unknown point "container.craete"`},
		{"event of another point", hooks.ContainerRootfs, &hooks.ContainerStartEvent{}, "a container.start event passed at container.rootfs"},
		{"not an event", hooks.ContainerRootfs, struct{}{}, "struct {} is not an event"},
		{"raw event with an unknown member", hooks.ContainerRootfs, []byte(`{"version":1,"readonly":true,"bogus":1}`), `unknown member "bogus"`},
		{"raw event of another version", hooks.ContainerRootfs, json.RawMessage(`{"version":2}`), "event schema version 2, want 1"},
		{"raw event without version", hooks.ContainerRootfs, []byte(`{"readonly":true}`), `not a JSON object with a "version"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.Run(context.Background(), tt.point, tt.event)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Run: %v, want invalid argument saying %q", err, tt.msg)
			}
			if out.Allowed {
				t.Error("an error outcome allows")
			}
		})
	}

	out, err := e.Run(context.Background(), hooks.ContainerRootfs, []byte(`{"version":1,"readonly":true}`))
	if err != nil || !out.Allowed || !strings.Contains(string(out.Event), `"readonly":true`) {
		t.Errorf("raw event: %+v, %v", out, err)
	}
	out, err = e.Run(context.Background(), hooks.SandboxVM, &hooks.SandboxVMEvent{})
	if err != nil || !out.Allowed || out.Event != nil {
		t.Errorf("point without hooks: %+v, %v; want allowed, no event", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err = e.Run(ctx, hooks.ContainerRootfs, rootfsEvent())
	if !errors.Is(err, context.Canceled) || out.Allowed {
		t.Errorf("cancelled context: %+v, %v", out, err)
	}
}

// TestHammer runs P goroutines × N chains on one engine, over several
// points, with patches, denials and failures.
func TestHammer(t *testing.T) {
	const P, N = 8, 100
	cfg := []config.Hook{
		scripted(t, "patch", setReadonly, hooks.ContainerRootfs),
		expectReadonly(t, "check"),
		scripted(t, "deny-exec", `{"allow":false,"reason":"no exec"}`, hooks.ProcessExec),
		hook("trap", watModule(t, "trap"), hooks.ContainerDelete),
	}
	cfg[3].OnError = config.HookAllow
	var calls atomic.Int64
	e := newEngine(t, cfg, hooks.Options{MaxInstances: 3, Observe: func(hooks.Call) { calls.Add(1) }})
	var wg sync.WaitGroup
	errs := make(chan error, P)
	for p := range P {
		wg.Go(func() {
			for i := range N {
				ev := rootfsEvent()
				ev.Container.ID = fmt.Sprintf("c-%d-%d", p, i)
				out, err := e.Run(context.Background(), hooks.ContainerRootfs, ev)
				if err == nil {
					err = out.Decode(ev)
				}
				if err != nil || !out.Allowed || !ev.Readonly || ev.Container.ID != fmt.Sprintf("c-%d-%d", p, i) {
					errs <- fmt.Errorf("rootfs %d/%d: %+v, %v", p, i, out, err)
					return
				}
				out, err = e.Run(context.Background(), hooks.ProcessExec, &hooks.ProcessExecEvent{ExecID: "e"})
				if err != nil || out.Allowed || out.Reason != "no exec" {
					errs <- fmt.Errorf("exec %d/%d: %+v, %v", p, i, out, err)
					return
				}
				out, err = e.Run(context.Background(), hooks.ContainerDelete, &hooks.ContainerDeleteEvent{})
				if err != nil || !out.Allowed {
					errs <- fmt.Errorf("delete %d/%d: %+v, %v", p, i, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := calls.Load(); got != P*N*4 {
		t.Errorf("observed %d calls, want %d", got, P*N*4)
	}
}
