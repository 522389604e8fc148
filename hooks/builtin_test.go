//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/hooks/hookstest"
	"github.com/huskrt/husk/runtime/config"
)

// createEvent is P5's event (hookstest.CreateEvent).
var createEvent = hookstest.CreateEvent

func builtin(t testing.TB, name string, points ...hooks.Point) config.Hook {
	h := hook(name, goModule(t, "../policies/"+name), points...)
	if changers[name] {
		h.Kind = config.HookChange
	}
	return h
}

// changers are the built-in policies that patch (docs/hooks.md §6 says
// each one's kind).
var changers = map[string]bool{"readonly-rootfs": true, "resource-defaults": true, "vm-sizing": true}

func TestDenyPrivileged(t *testing.T) {
	e := newEngine(t, []config.Hook{builtin(t, "deny-privileged", hooks.ContainerCreate)}, hooks.Options{})
	out, err := e.Run(context.Background(), hooks.ContainerCreate, createEvent(true))
	if err != nil || out.Allowed || out.Hook != "deny-privileged" || out.Cause != nil {
		t.Fatalf("privileged: %+v, %v; want denied by deny-privileged", out, err)
	}
	if want := `hook "deny-privileged" denied container.create: privileged container: capability CAP_SYS_ADMIN in the bounding set`; out.Err().Error() != want {
		t.Errorf("error %q\nwant  %q", out.Err(), want)
	}
	out, err = e.Run(context.Background(), hooks.ContainerCreate, createEvent(false))
	if err != nil || !out.Allowed || out.Patched() {
		t.Fatalf("unprivileged: %+v, %v; want allowed", out, err)
	}
}

// TestBuiltinConfig: the [[hook]] config table reaches the policy, and
// a table the policy rejects fails New with the policy's message.
func TestBuiltinConfig(t *testing.T) {
	h := builtin(t, "deny-privileged", hooks.ContainerCreate)
	h.Config = map[string]any{"capabilities": []any{"CAP_KILL"}}
	e := newEngine(t, []config.Hook{h}, hooks.Options{})
	out, err := e.Run(context.Background(), hooks.ContainerCreate, createEvent(false))
	if err != nil || out.Allowed || !strings.Contains(out.Reason, "CAP_KILL") {
		t.Fatalf("configured capabilities: %+v, %v; want CAP_KILL denied", out, err)
	}

	h.Config = map[string]any{"capabilites": []any{}}
	_, err = hooks.New(context.Background(), []config.Hook{h}, hooks.Options{})
	if err == nil || !strings.Contains(err.Error(), "module rejected its configuration: unknown key capabilites") {
		t.Fatalf("New with a bad config table: %v", err)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	e := newEngine(t, []config.Hook{builtin(t, "readonly-rootfs", hooks.ContainerCreate, hooks.ContainerRootfs)}, hooks.Options{})

	ev := createEvent(false)
	out, err := e.Run(context.Background(), hooks.ContainerCreate, ev)
	if err == nil {
		err = out.Decode(ev)
	}
	if err != nil || !out.Allowed || !ev.Spec.Root.Readonly || ev.Spec.Root.Path != "rootfs" {
		t.Fatalf("container.create: %+v, %v; want root.readonly set", out, err)
	}
	if len(out.Patches) != 1 || !reflect.DeepEqual(out.Patches[0].Ops, []hooks.Op{{Op: "add", Path: "/spec/root/readonly", Value: json.RawMessage("true")}}) {
		t.Errorf("patches %+v", out.Patches)
	}

	rev := rootfsEvent()
	out, err = e.Run(context.Background(), hooks.ContainerRootfs, rev)
	if err == nil {
		err = out.Decode(rev)
	}
	if err != nil || !out.Allowed || !rev.Readonly {
		t.Fatalf("container.rootfs: %+v, %v; want readonly", out, err)
	}
}

// BenchmarkHookCall is P5's husk side: one warm call of the built-in
// deny-privileged policy on a ~400-byte container.create event, through the
// whole engine (event encoding, the Wasm call, decision parsing). Besides
// ns/op (the mean) it reports the p50 and p99 of the calls.
func BenchmarkHookCall(b *testing.B) {
	for _, bc := range []struct {
		name       string
		privileged bool
	}{{"allow", false}, {"deny", true}} {
		b.Run(bc.name, func(b *testing.B) {
			h := builtin(b, "deny-privileged", hooks.ContainerCreate)
			h.Timeout = "30s" // measure speed: a loaded machine must not fail calls
			e := newEngine(b, []config.Hook{h}, hooks.Options{})
			ev := createEvent(bc.privileged)
			raw, _ := json.Marshal(ev)
			ctx := context.Background()
			took := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				out, err := e.Run(ctx, hooks.ContainerCreate, ev)
				took = append(took, time.Since(start))
				if err != nil || out.Allowed == bc.privileged {
					b.Fatalf("%+v, %v", out, err)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(len(raw)), "event-bytes")
		})
	}
}

// TestBuiltinsThroughTheEngine runs every built-in policy (C on
// policies/c/husk.h, built by goModule through policies/build) as a
// module through the whole engine: events encoded from their Go types,
// patches applied and checked against the point's rules.
func TestBuiltinsThroughTheEngine(t *testing.T) {
	mountEv := func(typ, source string, options ...string) *hooks.ContainerMountEvent {
		return &hooks.ContainerMountEvent{Container: hooks.Container{ID: "c"}, Mount: hooks.Mount{Destination: "/d", Type: typ, Source: source, Options: options}}
	}
	create := func(image string) *hooks.ContainerCreateEvent {
		ev := createEvent(false)
		ev.Container.Image = hooks.NullString(image)
		return ev
	}
	tests := []struct {
		policy string
		point  hooks.Point
		config map[string]any
		event  hooks.Event
		reason string                                 // empty: allowed
		check  func(t *testing.T, out *hooks.Outcome) // for allowed outcomes
	}{
		{policy: "allowed-images", point: hooks.ContainerCreate, config: map[string]any{"images": []any{"docker.io/library/"}},
			event: create("docker.io/library/nginx:1.27")},
		{policy: "allowed-images", point: hooks.ContainerCreate, config: map[string]any{"images": []any{"docker.io/library/"}},
			event: create("evil.example.com/miner:latest"), reason: "image evil.example.com/miner:latest is not allowed"},
		{policy: "allowed-images", point: hooks.ContainerCreate, config: map[string]any{"images": []any{"docker.io/library/"}},
			event: create(""), reason: "image unknown: husk knows no image name for this container (as for ctr run --rootfs), and only listed images may run"},
		{policy: "exec-allowlist", point: hooks.ProcessExec, config: map[string]any{"commands": []any{"/bin/ls"}},
			event: &hooks.ProcessExecEvent{ExecID: "e", Process: hooks.Process{Args: hooks.List{"/bin/ls", "-l"}}}},
		{policy: "exec-allowlist", point: hooks.ProcessExec, config: map[string]any{"commands": []any{"/bin/ls"}},
			event: &hooks.ProcessExecEvent{ExecID: "e", Process: hooks.Process{Args: hooks.List{"/bin/sh"}}}, reason: `exec of "/bin/sh" is not on the allow-list`},
		{policy: "host-path-allowlist", point: hooks.ContainerMount, config: map[string]any{"paths": []any{"/srv/data"}},
			event: mountEv("bind", "/srv/data/x", "rbind")},
		{policy: "host-path-allowlist", point: hooks.ContainerMount, config: map[string]any{"paths": []any{"/srv/data"}},
			event: mountEv("none", "/srv/data/../../etc", "rbind", "ro"), reason: "bind mount of host path /srv/data/../../etc is not allowed"},
		{policy: "resource-defaults", point: hooks.ContainerCreate, config: map[string]any{"memory_limit": int64(1 << 28)},
			event: create(""), check: func(t *testing.T, out *hooks.Outcome) {
				ev := createEvent(false)
				if err := out.Decode(ev); err != nil || ev.Spec.Linux == nil || *ev.Spec.Linux.Resources.Memory.Limit != 1<<28 {
					t.Errorf("Decode: %v, %+v", err, ev.Spec.Linux)
				}
			}},
		{policy: "vm-sizing", point: hooks.SandboxVM, config: map[string]any{"max_vcpus": int64(2)},
			event: &hooks.SandboxVMEvent{VM: hooks.VM{VCPUs: 8, MemoryMiB: 512}}, check: func(t *testing.T, out *hooks.Outcome) {
				var ev hooks.SandboxVMEvent
				if err := out.Decode(&ev); err != nil || ev.VM.VCPUs != 2 || ev.VM.MemoryMiB != 512 {
					t.Errorf("Decode: %v, %+v", err, ev.VM)
				}
			}},
		{policy: "audit-log", point: hooks.ContainerDelete, event: &hooks.ContainerDeleteEvent{Container: hooks.Container{ID: "c9"}}},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.reason, func(t *testing.T) {
			h := builtin(t, tt.policy, tt.point)
			h.Config = tt.config
			var log logRecorder
			e := newEngine(t, []config.Hook{h}, hooks.Options{})
			out, err := e.Run(log.ctx(), tt.point, tt.event)
			if err != nil || out.Cause != nil || out.Allowed != (tt.reason == "") || out.Reason != tt.reason {
				t.Fatalf("outcome allowed %v reason %q cause %v, %v; want reason %q", out.Allowed, out.Reason, out.Cause, err, tt.reason)
			}
			if tt.check != nil {
				tt.check(t, &out)
			}
			if tt.policy == "audit-log" {
				if attrs, ok := log.find("audit container.delete container=c9"); !ok || attrs["hook"] != "audit-log" || attrs["from"] != "module" {
					t.Errorf("audit line: %v, %v", attrs, ok)
				}
			}
		})
	}
}
