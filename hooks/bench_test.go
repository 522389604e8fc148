//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
)

// fiveHooks is P6's chain at container.create: four deny-privileged (each
// allows) and readonly-rootfs (which patches).
func fiveHooks(b *testing.B) []config.Hook {
	var cfg []config.Hook
	for i := range 4 {
		h := builtin(b, "deny-privileged", hooks.ContainerCreate)
		h.Name = fmt.Sprintf("deny-privileged-%d", i)
		cfg = append(cfg, h)
	}
	return append(cfg, builtin(b, "readonly-rootfs", hooks.ContainerCreate))
}

// BenchmarkChain is P6's first half: the hook cost of a container create
// with no hook and with five enforcing hooks (Run and decoding the patched
// event, as the runtime does).
func BenchmarkChain(b *testing.B) {
	for _, n := range []int{0, 5} {
		b.Run(fmt.Sprintf("hooks=%d", n), func(b *testing.B) {
			var cfg []config.Hook
			if n > 0 {
				cfg = fiveHooks(b)
				for i := range cfg {
					cfg[i].Timeout = "30s"
				}
			}
			e := newEngine(b, cfg, hooks.Options{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				ev := createEvent(false)
				out, err := e.Run(ctx, hooks.ContainerCreate, ev)
				if err == nil {
					err = out.Err()
				}
				if err == nil {
					err = out.Decode(ev)
				}
				if err != nil || (n > 0 && !ev.Spec.Root.Readonly) {
					b.Fatalf("%+v, %v", out, err)
				}
			}
		})
	}
}

// BenchmarkNew is P6's second half: starting an engine with five distinct
// modules whose compiled code is in the file cache (as a shim starts), and
// closing it; and with one, for the cost per module.
func BenchmarkNew(b *testing.B) {
	five := []config.Hook{
		builtin(b, "deny-privileged", hooks.ContainerCreate),
		builtin(b, "readonly-rootfs", hooks.ContainerRootfs),
		builtin(b, "allowed-images", hooks.ContainerCreate),
		builtin(b, "exec-allowlist", hooks.ProcessExec),
		builtin(b, "audit-log", hooks.ContainerDelete),
	}
	five[2].Config = map[string]any{"images": []any{"docker.io/library/"}}
	for _, cfg := range [][]config.Hook{five[:1], five} {
		b.Run(fmt.Sprintf("modules=%d", len(cfg)), func(b *testing.B) {
			newEngine(b, cfg, hooks.Options{}) // warms the shared file cache
			ctx := context.Background()
			for b.Loop() {
				e, err := hooks.New(ctx, cfg, hooks.Options{CacheDir: cacheDir()})
				if err != nil {
					b.Fatal(err)
				}
				_ = e.Close(ctx)
			}
		})
	}
}

// BenchmarkBuiltinCall is one warm call of a built-in policy through the
// engine, patch applied and the event decoded, as test/bench's P5
// built-in rows time it.
func BenchmarkBuiltinCall(b *testing.B) {
	ctr := hooks.Container{ID: "ctr-9a1e", Image: "docker.io/library/nginx:1.27"}
	sb := hooks.Sandbox{ID: "pod-7f3c", Namespace: "k8s.io", Handler: "linux"}
	for _, c := range []struct {
		policy string
		point  hooks.Point
		config map[string]any
		event  func() hooks.Event
	}{
		{"resource-defaults", hooks.ContainerCreate, map[string]any{"memory_limit": int64(1 << 28), "pids_limit": int64(1024)}, func() hooks.Event { return createEvent(false) }},
		{"readonly-rootfs", hooks.ContainerRootfs, nil, func() hooks.Event {
			return &hooks.ContainerRootfsEvent{Sandbox: sb, Container: ctr, Mounts: []hooks.RootfsMount{{Type: "overlay", Source: "overlay", Options: hooks.List{"lowerdir=/l", "upperdir=/u"}}}}
		}},
		{"vm-sizing", hooks.SandboxVM, map[string]any{"max_vcpus": int64(2)}, func() hooks.Event {
			return &hooks.SandboxVMEvent{Sandbox: sb, VM: hooks.VM{Hypervisor: "builtin", VCPUs: 4, MemoryMiB: 512}}
		}},
		{"audit-log", hooks.ContainerDelete, map[string]any{"level": "debug"}, func() hooks.Event {
			return &hooks.ContainerDeleteEvent{Sandbox: sb, Container: ctr}
		}},
		{"deny-privileged", hooks.ContainerCreate, nil, func() hooks.Event { return createEvent(false) }},
	} {
		b.Run(c.policy, func(b *testing.B) {
			h := builtin(b, c.policy, c.point)
			h.Config = c.config
			e := newEngine(b, []config.Hook{h}, hooks.Options{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				ev := c.event()
				out, err := e.Run(ctx, c.point, ev)
				if err == nil {
					err = out.Err()
				}
				if err == nil && out.Patched() {
					err = out.Decode(ev)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
