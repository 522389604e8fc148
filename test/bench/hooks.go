package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/hooks/hookstest"
	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/test/devenv"
)

// The hook side of the bench (shared/TARGETS.md P5, P6): a hook call next
// to the same rule in Rego evaluated by OPA's Go library in the same run,
// and what five enforcing hooks add to a container create and to a shim's
// start. OPA is linked into this command only, never into the shim.

type hooksResult struct {
	// P5: one warm call on a container.create event, µs.
	EventBytes int                `json:"p5_event_bytes"`
	Calls      int                `json:"p5_calls"`
	P5         map[string]latency `json:"p5_hook_call_us"`
	// P5: one warm call of each built-in policy, µs (husk alone).
	Builtins map[string]latency `json:"p5_builtin_call_us"`
	// P6: hooks.New with five modules, ms (in-process; cold: empty cache).
	NewWarm stats `json:"p6_engine_start_warm_ms"`
	NewCold stats `json:"p6_engine_start_cold_ms"`
	// P6: hooks.Start of the mixed five (2 on the create path) until
	// container.create and container.rootfs are answered, cache warm, ms:
	// the exec and delete modules load at their first call, not before.
	StartMixed stats `json:"p6_engine_start_mixed_to_create_ms"`
	// P6: the same with the five of the create path (P6's hooks).
	StartCreate stats `json:"p6_engine_start_to_create_ms"`
	// P6: the size of each built-in's module, bytes (C, policies/c/husk.h).
	ModuleBytes map[string]int64 `json:"p6_builtin_module_bytes"`
	// P6: `ctr run --rm` of /bin/true in a running pod (create cost) and
	// with a fresh shim (start + create), 0 and 5 hooks, ms.
	E2E map[string]stats `json:"p6_ctr_run_rm_ms"`
}

type latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// denyPrivilegedRego is policies/deny-privileged's rule in Rego.
const denyPrivilegedRego = `package husk.deny_privileged

denied := {"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
	"CAP_SYS_BOOT", "CAP_MAC_ADMIN", "CAP_BPF", "CAP_DAC_READ_SEARCH"}

sets := ["bounding", "effective", "permitted", "inheritable", "ambient"]

deny contains msg if {
	some set in sets
	some cap in input.spec.process.capabilities[set]
	denied[cap]
	msg := sprintf("privileged container: capability %s in the %s set", [cap, set])
}

deny contains "privileged container: the device cgroup allows every device" if {
	some rule in input.spec.linux.resources.devices
	rule.allow == true
	object.get(rule, "type", null) in {null, "a", ""}
	object.get(rule, "major", null) in {null, -1}
	object.get(rule, "minor", null) in {null, -1}
}
`

// p5Event is P5's event (hookstest.CreateEvent).
var p5Event = hookstest.CreateEvent

// buildPolicies builds the built-in policies into dir.
func buildPolicies(ctx context.Context, dir string, names ...string) (map[string]string, error) {
	root, err := devenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n+".wasm")
		if err := build.Go(ctx, filepath.Join(root, "policies", n), p); err != nil {
			return nil, err
		}
		out[n] = p
	}
	return out, nil
}

// p6Hooks are the five enforcing hooks of P6, all on a container create's
// path: two at container.create (one patches), one each at rootfs (patch),
// mount and start.
func p6Hooks(mods map[string]string) []config.Hook {
	mk := func(name string, cfg map[string]any, points ...string) config.Hook {
		return config.Hook{Name: name, Module: mods[name], Points: points, Kind: builtinKind(name), Config: cfg}.WithDefaults()
	}
	return []config.Hook{
		mk("deny-privileged", nil, "container.create"),
		mk("resource-defaults", map[string]any{"pids_limit": int64(1024)}, "container.create"),
		mk("readonly-rootfs", nil, "container.rootfs"),
		mk("host-path-allowlist", map[string]any{"paths": []any{"/srv"}}, "container.mount"),
		mk("audit-log", map[string]any{"level": "debug"}, "container.start"),
	}
}

// mixedHooks are five enforcing hooks of which two are on a create's path
// and three are asked later (exec, delete): what a shim must load before
// the first create depends on the points.
func mixedHooks(mods map[string]string) []config.Hook {
	mk := func(name, module string, cfg map[string]any, points ...string) config.Hook {
		return config.Hook{Name: name, Module: mods[module], Points: points, Kind: builtinKind(module), Config: cfg}.WithDefaults()
	}
	return []config.Hook{
		mk("deny-privileged", "deny-privileged", nil, "container.create"),
		mk("readonly-rootfs", "readonly-rootfs", nil, "container.rootfs"),
		mk("exec-allowlist", "exec-allowlist", map[string]any{"commands": []any{"/bin/ls"}}, "process.exec"),
		mk("audit-delete", "audit-log", map[string]any{"level": "debug"}, "container.delete"),
		mk("audit-pod-delete", "audit-log", map[string]any{"level": "debug"}, "sandbox.delete"),
	}
}

// builtinKind is the kind a built-in policy is configured with: change
// for those that patch, check for the others (docs/hooks.md §6).
func builtinKind(policy string) config.HookKind {
	switch policy {
	case "readonly-rootfs", "resource-defaults", "vm-sizing":
		return config.HookChange
	}
	return config.HookCheck
}

// hookTOML renders hooks as [[hook]] tables.
func hookTOML(hs []config.Hook) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "[[hook]]\nname = %q\nmodule = %q\npoints = [", h.Name, h.Module)
		for i, p := range h.Points {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", p)
		}
		fmt.Fprintf(&b, "]\nkind = %q\n", h.Kind)
		if len(h.Config) > 0 {
			b.WriteString("[hook.config]\n")
			for k, v := range h.Config {
				j, _ := json.Marshal(v) // TOML accepts these JSON scalars and arrays of strings
				fmt.Fprintf(&b, "%s = %s\n", k, j)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// benchHooks measures P5 and P6.
func benchHooks(ctx context.Context, c *devenv.Containerd, dir, rootfs string, runs int) (*hooksResult, error) {
	pdir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, err
	}
	mods, err := buildPolicies(ctx, pdir, "deny-privileged", "resource-defaults", "readonly-rootfs", "host-path-allowlist", "audit-log", "exec-allowlist", "allowed-images", "vm-sizing")
	if err != nil {
		return nil, err
	}
	res := &hooksResult{P5: map[string]latency{}, Builtins: map[string]latency{}, E2E: map[string]stats{}, ModuleBytes: map[string]int64{}}
	for name, path := range mods {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		res.ModuleBytes[name] = fi.Size()
	}
	if err := benchP5(ctx, res, mods["deny-privileged"], filepath.Join(dir, "hook-cache")); err != nil {
		return nil, fmt.Errorf("P5: %w", err)
	}
	if err := benchBuiltins(ctx, res, mods, filepath.Join(dir, "hook-cache")); err != nil {
		return nil, fmt.Errorf("P5 built-ins: %w", err)
	}
	if err := benchEngineStart(ctx, res, p6Hooks(mods), dir); err != nil {
		return nil, fmt.Errorf("P6 engine start: %w", err)
	}
	if err := benchStartToCreate(ctx, res, p6Hooks(mods), mixedHooks(mods), filepath.Join(dir, "hook-cache")); err != nil {
		return nil, fmt.Errorf("P6 engine start to create: %w", err)
	}
	if c != nil {
		if err := benchP6E2E(ctx, res, c, p6Hooks(mods), mixedHooks(mods), dir, rootfs, runs); err != nil {
			return nil, fmt.Errorf("P6: %w", err)
		}
	}
	return res, nil
}

// benchP5 calls the husk engine (deny-privileged) and OPA's prepared query
// on the same event, in interleaved blocks so that drift hits both alike.
func benchP5(ctx context.Context, res *hooksResult, module, cacheDir string) error {
	const calls, block = 20000, 500
	h := config.Hook{Name: "deny-privileged", Module: module, Points: []string{"container.create"}}.WithDefaults()
	e, err := hooks.New(ctx, []config.Hook{h}, hooks.Options{CacheDir: cacheDir})
	if err != nil {
		return err
	}
	defer e.Close(ctx)
	pq, err := rego.New(rego.Query("data.husk.deny_privileged.deny"), rego.Module("deny_privileged.rego", denyPrivilegedRego)).PrepareForEval(ctx)
	if err != nil {
		return err
	}
	// husk gets the event as the runtime hands it (a Go value it encodes);
	// OPA gets it decoded once into generic JSON, the cheapest input for it.
	inputs := map[bool]any{}
	for _, priv := range []bool{false, true} {
		raw, _ := json.Marshal(p5Event(priv))
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		inputs[priv] = v
		res.EventBytes = len(raw)
	}
	huskCall := func(priv bool) (bool, error) {
		out, err := e.Run(ctx, hooks.ContainerCreate, p5Event(priv))
		return out.Allowed, err
	}
	opaCall := func(priv bool) (bool, error) {
		rs, err := pq.Eval(ctx, rego.EvalInput(inputs[priv]))
		if err != nil {
			return false, err
		}
		if len(rs) != 1 || len(rs[0].Expressions) != 1 {
			return false, fmt.Errorf("OPA: unexpected result %v", rs)
		}
		denials, _ := rs[0].Expressions[0].Value.([]any)
		return len(denials) == 0, nil
	}
	// Both must decide alike, both ways.
	for _, priv := range []bool{false, true} {
		for name, f := range map[string]func(bool) (bool, error){"husk": huskCall, "OPA": opaCall} {
			allowed, err := f(priv)
			if err != nil || allowed == priv {
				return fmt.Errorf("%s on a privileged=%v event: allowed %v, %v", name, priv, allowed, err)
			}
		}
	}
	took := map[string][]time.Duration{}
	measure := func(name string, f func(bool) (bool, error), n int, keep bool) error {
		for range n {
			t0 := time.Now()
			allowed, err := f(false)
			d := time.Since(t0)
			if err != nil || !allowed {
				return fmt.Errorf("%s: allowed %v, %v", name, allowed, err)
			}
			if keep {
				took[name] = append(took[name], d)
			}
		}
		return nil
	}
	// Warm up both, then alternate blocks.
	if err := measure("husk", huskCall, 2000, false); err != nil {
		return err
	}
	if err := measure("opa", opaCall, 2000, false); err != nil {
		return err
	}
	for i := 0; i < calls/block; i++ {
		order := []string{"husk", "opa"}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			f := huskCall
			if name == "opa" {
				f = opaCall
			}
			if err := measure(name, f, block, true); err != nil {
				return err
			}
		}
	}
	res.Calls = calls
	for name, ts := range took {
		slices.Sort(ts)
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
		res.P5[name] = latency{P50: us(ts[len(ts)/2]), P99: us(ts[len(ts)*99/100])}
	}
	return nil
}

// benchBuiltins times a warm call of each built-in policy at one of its
// points, through the engine as the runtime calls it (patches applied and
// checked).
func benchBuiltins(ctx context.Context, res *hooksResult, mods map[string]string, cacheDir string) error {
	const calls = 5000
	ctr := hooks.Container{ID: "ctr-9a1e", Image: "docker.io/library/nginx:1.27"}
	sb := hooks.Sandbox{ID: "pod-7f3c", Namespace: "k8s.io", Handler: "linux"}
	proc := hooks.Process{Args: hooks.List{"/bin/ls", "-l"}, Env: hooks.List{"PATH=/bin"}, Cwd: "/"}
	for _, b := range []struct {
		policy string
		point  hooks.Point
		config map[string]any
		event  func() hooks.Event
	}{
		{"deny-privileged", hooks.ContainerCreate, nil, func() hooks.Event { return p5Event(false) }},
		{"allowed-images", hooks.ContainerCreate, map[string]any{"images": []any{"docker.io/library/"}}, func() hooks.Event { return p5Event(false) }},
		{"resource-defaults", hooks.ContainerCreate, map[string]any{"memory_limit": int64(1 << 28), "pids_limit": int64(1024)}, func() hooks.Event { return p5Event(false) }},
		{"readonly-rootfs", hooks.ContainerRootfs, nil, func() hooks.Event {
			return &hooks.ContainerRootfsEvent{Sandbox: sb, Container: ctr, Mounts: []hooks.RootfsMount{{Type: "overlay", Source: "overlay", Options: hooks.List{"lowerdir=/l", "upperdir=/u"}}}}
		}},
		{"host-path-allowlist", hooks.ContainerMount, map[string]any{"paths": []any{"/srv/data"}}, func() hooks.Event {
			return &hooks.ContainerMountEvent{Sandbox: sb, Container: ctr, Mount: hooks.Mount{Destination: "/data", Type: "bind", Source: "/srv/data/x", Options: hooks.List{"rbind"}}}
		}},
		{"exec-allowlist", hooks.ProcessExec, map[string]any{"commands": []any{"/bin/ls"}}, func() hooks.Event {
			return &hooks.ProcessExecEvent{Sandbox: sb, Container: ctr, ExecID: "e1", Process: proc}
		}},
		{"vm-sizing", hooks.SandboxVM, map[string]any{"max_vcpus": int64(2)}, func() hooks.Event {
			return &hooks.SandboxVMEvent{Sandbox: sb, VM: hooks.VM{Hypervisor: "builtin", VCPUs: 4, MemoryMiB: 512}}
		}},
		{"audit-log", hooks.ContainerDelete, map[string]any{"level": "debug"}, func() hooks.Event {
			return &hooks.ContainerDeleteEvent{Sandbox: sb, Container: ctr}
		}},
	} {
		h := config.Hook{Name: b.policy, Module: mods[b.policy], Points: []string{string(b.point)}, Kind: builtinKind(b.policy), Config: b.config}.WithDefaults()
		e, err := hooks.New(ctx, []config.Hook{h}, hooks.Options{CacheDir: cacheDir})
		if err != nil {
			return err
		}
		took := make([]time.Duration, 0, calls)
		for i := range calls + calls/10 { // the first tenth warms up
			ev := b.event()
			t0 := time.Now()
			out, err := e.Run(ctx, b.point, ev)
			if err == nil {
				err = out.Err()
			}
			if err == nil && out.Patched() {
				err = out.Decode(ev)
			}
			d := time.Since(t0)
			if err != nil {
				_ = e.Close(ctx)
				return fmt.Errorf("%s: %w", b.policy, err)
			}
			if i >= calls/10 {
				took = append(took, d)
			}
		}
		_ = e.Close(ctx)
		slices.Sort(took)
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
		res.Builtins[b.policy] = latency{P50: us(took[len(took)/2]), P99: us(took[len(took)*99/100])}
	}
	return nil
}

// benchEngineStart times hooks.New with P6's five modules and a file cache:
// cold (an empty cache directory each time: every module is compiled) and
// warm (the cache filled), as a shim starts a sandbox's engine.
func benchEngineStart(ctx context.Context, res *hooksResult, cfg []config.Hook, dir string) error {
	start := func(cache string) (float64, error) {
		t0 := time.Now()
		e, err := hooks.New(ctx, cfg, hooks.Options{CacheDir: cache})
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		_ = e.Close(ctx)
		return float64(d.Microseconds()) / 1000, nil
	}
	var cold, warm []float64
	for i := range 3 {
		cache := filepath.Join(dir, fmt.Sprintf("cold-cache-%d", i))
		ms, err := start(cache)
		if err != nil {
			return err
		}
		cold = append(cold, ms)
		if i == 0 {
			for range 10 {
				ms, err := start(cache)
				if err != nil {
					return err
				}
				warm = append(warm, ms)
			}
		}
		_ = os.RemoveAll(cache)
	}
	res.NewCold, res.NewWarm = summarize(cold), summarize(warm)
	return nil
}

// benchStartToCreate times what a fresh shim's engine costs its first
// container: hooks.Start, then the create path's points asked (as the
// runtime asks them), cache warm; P6's five hooks (all on the create
// path) and the mixed five (two on it), interleaved.
func benchStartToCreate(ctx context.Context, res *hooksResult, create, mixed []config.Hook, cacheDir string) error {
	sb := hooks.Sandbox{ID: "pod-7f3c", Namespace: "k8s.io", Handler: "linux"}
	ctr := hooks.Container{ID: "ctr-9a1e", Image: "docker.io/library/nginx:1.27"}
	events := []hooks.Event{
		p5Event(false),
		&hooks.ContainerRootfsEvent{Sandbox: sb, Container: ctr, Mounts: []hooks.RootfsMount{{Type: "overlay", Source: "overlay", Options: hooks.List{"lowerdir=/l", "upperdir=/u"}}}},
		&hooks.ContainerMountEvent{Sandbox: sb, Container: ctr, Mount: hooks.Mount{Destination: "/data", Type: "bind", Source: "/srv/x", Options: hooks.List{"rbind"}}},
		&hooks.ContainerStartEvent{Sandbox: sb, Container: ctr},
	}
	once := func(cfg []config.Hook) (float64, error) {
		t0 := time.Now()
		e, err := hooks.Start(ctx, cfg, hooks.Options{CacheDir: cacheDir})
		if err != nil {
			return 0, err
		}
		defer e.Close(ctx)
		for _, ev := range events {
			out, err := e.Run(ctx, ev.Point(), ev)
			if err == nil {
				err = out.Err()
			}
			if err != nil {
				return 0, fmt.Errorf("%s: %w", ev.Point(), err)
			}
		}
		return float64(time.Since(t0).Microseconds()) / 1000, nil
	}
	// Warm the cache.
	for _, cfg := range [][]config.Hook{create, mixed} {
		if _, err := once(cfg); err != nil {
			return err
		}
	}
	var c, m []float64
	for range 10 {
		ms, err := once(create)
		if err != nil {
			return err
		}
		c = append(c, ms)
		if ms, err = once(mixed); err != nil {
			return err
		}
		m = append(m, ms)
	}
	res.StartCreate, res.StartMixed = summarize(c), summarize(m)
	return nil
}

// benchP6E2E runs `ctr run --rm /bin/true` with 0 and 5 hooks: in a
// running pod (the shim and its engine already up: the create's own cost)
// and as ctr does by default, a fresh shim per container (its start, the
// engine's load with the shared cache warm, and the create).
func benchP6E2E(ctx context.Context, res *hooksResult, c *devenv.Containerd, cfg, mixed []config.Hook, dir, rootfs string, runs int) error {
	cfgs := map[int]string{0: filepath.Join(dir, "hooks0.toml"), 5: filepath.Join(dir, "hooks5.toml"), 2: filepath.Join(dir, "hooks-mixed.toml")}
	if err := os.WriteFile(cfgs[2], []byte(hookTOML(mixed)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cfgs[0], []byte("# no hooks\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cfgs[5], []byte(hookTOML(cfg)), 0o644); err != nil {
		return err
	}
	// One pod per config, kept running.
	var pods []string
	defer func() {
		for _, id := range pods {
			killTask(ctx, c, id)
			removeContainer(ctx, c, id)
		}
	}()
	for _, n := range []int{0, 5} {
		sb := fmt.Sprintf("p6-pod-%d", n)
		args := append([]string{"run", "-d", "--runtime", huskRT, "--runtime-config-path", cfgs[n]}, podArgs(sb, true)...)
		if _, stderr, err := c.Ctr(ctx, append(args, "--rootfs", rootfs, sb, "/bin/sleep", "100000")...); err != nil {
			return fmt.Errorf("pod %s: %v: %s", sb, err, stderr)
		}
		pods = append(pods, sb)
	}
	type variant struct {
		name  string
		hooks int
		pod   bool
		rt    string
	}
	variants := []variant{{"pod, 0 hooks", 0, true, huskRT}, {"pod, 5 hooks", 5, true, huskRT},
		{"fresh shim, 0 hooks", 0, false, huskRT}, {"fresh shim, 5 hooks", 5, false, huskRT}}
	variants = append(variants, variant{"fresh shim, 5 hooks, 2 on the create path", 2, false, huskRT})
	if *hooksRuntimeB != "" {
		variants = append(variants, variant{"fresh shim, 5 hooks, " + *hooksRuntimeB, 5, false, *hooksRuntimeB},
			variant{"fresh shim, 5 hooks, 2 on the create path, " + *hooksRuntimeB, 2, false, *hooksRuntimeB})
	}
	// The hooks are asked: pod-5 and a fresh shim refuse a privileged container.
	for _, v := range variants {
		if v.hooks == 0 {
			continue
		}
		args := []string{"run", "--rm", "--privileged", "--runtime", v.rt, "--runtime-config-path", cfgs[v.hooks]}
		if v.pod {
			args = append(args, podArgs("p6-pod-5", false)...)
		}
		_, stderr, err := c.Ctr(ctx, append(args, "--rootfs", rootfs, "p6-privileged", "/bin/true")...)
		if err == nil || !strings.Contains(stderr, `hook "deny-privileged" denied`) {
			return fmt.Errorf("%s: a privileged container was not refused: %v: %s", v.name, err, stderr)
		}
		_, _, _ = c.Ctr(ctx, "container", "delete", "p6-privileged")
	}
	times := map[string][]float64{}
	for i := -3; i < runs; i++ {
		if i%2 != 0 {
			slices.Reverse(variants)
		}
		for j, v := range variants {
			id := fmt.Sprintf("p6-%d-%d", j, i+3)
			args := []string{"run", "--rm", "--runtime", v.rt, "--runtime-config-path", cfgs[v.hooks]}
			if v.pod {
				args = append(args, podArgs(fmt.Sprintf("p6-pod-%d", v.hooks), false)...)
			}
			t0 := time.Now()
			if _, stderr, err := c.Ctr(ctx, append(args, "--rootfs", rootfs, id, "/bin/true")...); err != nil {
				return fmt.Errorf("%s: %v: %s", v.name, err, stderr)
			}
			if i >= 0 {
				times[v.name] = append(times[v.name], float64(time.Since(t0).Microseconds())/1000)
			}
		}
	}
	for k, ts := range times {
		res.E2E[k] = summarize(ts)
	}
	return nil
}

func printHooksTable(r *hooksResult) {
	if r == nil {
		return
	}
	h, o := r.P5["husk"], r.P5["opa"]
	fmt.Println()
	fmt.Printf("P5: deny-privileged on a %d-byte container.create event, %d warm calls each, interleaved.\n\n", r.EventBytes, r.Calls)
	fmt.Println("| id | what | baseline | husk | husk/baseline | target |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| P5 | hook call p50: husk engine (C policy, Wasm) vs OPA prepared query (Rego) | %.1f µs | %.1f µs | %.2f | ≤ 20 µs and ≤ 1 |\n", o.P50, h.P50, h.P50/o.P50)
	fmt.Printf("| P5 | hook call p99 | %.1f µs | %.1f µs | %.2f | ≤ 0.5 |\n", o.P99, h.P99, h.P99/o.P99)
	for _, k := range []string{"deny-privileged", "allowed-images", "resource-defaults", "readonly-rootfs", "host-path-allowlist", "exec-allowlist", "vm-sizing", "audit-log"} {
		if l, ok := r.Builtins[k]; ok {
			fmt.Printf("| P5 | built-in `%s`, one warm call through the engine, p50 (p99) | | %.1f µs (%.1f) | | reported |\n", k, l.P50, l.P99)
		}
		if n, ok := r.ModuleBytes[k]; ok {
			fmt.Printf("| P6 | built-in `%s`, module size | | %.1f kB | | reported |\n", k, float64(n)/1000)
		}
	}
	if len(r.E2E) > 0 {
		p0, p5 := r.E2E["pod, 0 hooks"], r.E2E["pod, 5 hooks"]
		f0, f5 := r.E2E["fresh shim, 0 hooks"], r.E2E["fresh shim, 5 hooks"]
		fmt.Printf("| P6 | `ctr run --rm /bin/true` in a running pod, median (p90): 0 vs 5 enforcing hooks | %.1f ms (%.1f) | %.1f ms (%.1f) | %+.1f ms | ≤ +2 ms |\n",
			p0.Median, p0.P90, p5.Median, p5.P90, p5.Median-p0.Median)
		fmt.Printf("| P6 | `ctr run --rm /bin/true`, fresh shim (start + engine + create), cache warm: 0 vs 5 hooks | %.1f ms (%.1f) | %.1f ms (%.1f) | %+.1f ms | ≤ +10 ms |\n",
			f0.Median, f0.P90, f5.Median, f5.P90, f5.Median-f0.Median)
		m := r.E2E["fresh shim, 5 hooks, 2 on the create path"]
		fmt.Printf("| P6 | the same, 5 hooks of which 2 on the create path (3 at exec and delete) | %.1f ms (%.1f) | %.1f ms (%.1f) | %+.1f ms | — |\n",
			f0.Median, f0.P90, m.Median, m.P90, m.Median-f0.Median)
		if *hooksRuntimeB != "" {
			for _, k := range []string{"fresh shim, 5 hooks, ", "fresh shim, 5 hooks, 2 on the create path, "} {
				b := r.E2E[k+*hooksRuntimeB]
				fmt.Printf("| P6 | A/B: %s| %.1f ms (%.1f) | %.1f ms (%.1f) | %+.1f ms | — |\n",
					k+*hooksRuntimeB+" ", f0.Median, f0.P90, b.Median, b.P90, b.Median-f0.Median)
			}
		}
	}
	fmt.Printf("| P6 | hook engine start, 5 modules (hooks.New in-process), cache warm, median (p90) | 0 | %.1f ms (%.1f) | %+.1f ms | ≤ +10 ms |\n",
		r.NewWarm.Median, r.NewWarm.P90, r.NewWarm.Median)
	fmt.Printf("| P6 | hook engine start, 5 modules, cache cold, median of 3 | 0 | %.1f ms | +%.1f ms | reported |\n",
		r.NewCold.Median, r.NewCold.Median)
	fmt.Printf("| P6 | hooks.Start → create-path points answered, 5 modules all on the create path, cache warm, median (p90) | 0 | %.1f ms (%.1f) | %+.1f ms | — |\n",
		r.StartCreate.Median, r.StartCreate.P90, r.StartCreate.Median)
	fmt.Printf("| P6 | the same, 5 modules of which 2 on the create path: exec and delete modules not loaded before their first call | 0 | %.1f ms (%.1f) | %+.1f ms | — |\n",
		r.StartMixed.Median, r.StartMixed.P90, r.StartMixed.Median)
}

var (
	hooksOnly     = flag.Bool("hooks-only", false, "measure only P5 and P6 (the hook rows)")
	hooksRuntimeB = flag.String("hooks-runtime-b", "", "another runtime (e.g. io.containerd.huskb.v2, a second shim build in -shim-dir) to time with 5 hooks and a fresh shim, for A/B comparisons")
)
