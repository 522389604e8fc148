// Package wasmhost runs hook modules: WebAssembly modules, in any language,
// that implement husk's hook ABI (version 1, specified in docs/hooks.md).
// It moves bytes in and out of a module and bounds every call; what the
// bytes mean (events, decisions, patches) is package hooks' business.
//
// A Host owns the compilation cache (in memory, or file-backed under a
// directory shared by every shim, so that a module is compiled once per
// machine and wazero version; husk's own preparation of the module, its
// bounds and stack counter, is kept beside it). Host.Load checks a module
// against the ABI, compiles it and starts one instance, so that a broken
// module fails there and not on the hot path. Module.Decide is one hook call:
//
//	host, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: "/var/cache/husk/wasm"})
//	m, err := host.Load(ctx, wasm, wasmhost.ModuleConfig{Name: "deny-privileged", Timeout: 100 * time.Millisecond, MemoryLimitPages: 1024})
//	decision, err := m.Decide(ctx, "container.create", eventJSON)
//
// # Sandbox
//
// Each module runs in its own wazero runtime (sharing compiled code through
// the cache) so that its memory limit is its own. A module may import only
// the WASI preview 1 functions and husk's "log"; it gets no filesystem,
// network, environment or arguments, a fake clock and deterministic random
// bytes unless its Grants say otherwise. Every call runs under a deadline
// enforced by wazero (WithCloseOnContextDone), its output is bounded, and
// its call stack is counted by code husk adds to the module as it loads
// it (MaxStackBytes), wazero's own ceiling being 165 MiB of host memory.
//
// # Instances
//
// A module keeps a pool of instances (at most Config.MaxInstances), each
// initialised once (_initialize, then husk_init with the module's
// configuration) and reused call after call. An instance whose call failed
// in any way (trap, deadline, exit, bad output) is closed and never reused:
// its memory may be in any state.
//
// wasmhost imports nothing of husk's and nothing but wazero and the
// standard library.
package wasmhost
