package config

import (
	"slices"
	"time"
)

// Hook configures one hook module: a Wasm module husk asks, at each of its
// points, whether a resource-setup step may go on and with what changes
// (package hooks runs them; docs/hooks.md is the operator's guide).
//
// Hooks are the [[hook]] array of tables. The chain at a point is the hooks
// naming that point, in the order they are written; a drop-in's [[hook]]
// entries are appended after those of the files before it (a later file
// cannot remove or change an earlier file's hook). Load fills the defaults of
// the keys a [[hook]] entry leaves out, so a loaded Hook is complete.
type Hook struct {
	// Name identifies the hook in logs and in the errors users see. Unique,
	// made of lower-case letters, digits, '.', '_' and '-'.
	Name string `toml:"name"`
	// Module is the absolute, clean path of the .wasm file.
	Module string `toml:"module"`
	// SHA256, when set, pins the module's content: 64 lower-case hex digits
	// that must match the file's SHA-256 digest when husk loads it.
	SHA256 string `toml:"sha256,omitempty"`
	// Points are the points the hook is asked at (HookPoints lists them).
	Points []string `toml:"points"`
	// Kind says whether the hook changes steps or only checks them:
	// changing hooks run first at each point, then checking hooks see the
	// final event (and container.create's see the container again when a
	// later point changes it); a checking hook's patch is a failure.
	Kind HookKind `toml:"kind"`
	// Mode is what a denial does: stop the step (enforce) or be logged (audit).
	Mode HookMode `toml:"mode"`
	// OnError is the outcome when the module fails (trap, deadline, memory,
	// garbage output, missing export): deny (fail closed) or allow.
	OnError HookOnError `toml:"on_error"`
	// Timeout bounds one call into the module, as a Go duration ("1s"). It
	// is a wall-clock safety net against a runaway module, not a budget: a
	// call takes microseconds, but a loaded node can delay any thread by
	// tens of milliseconds, and a call past its deadline is a failure.
	Timeout Duration `toml:"timeout"`
	// MemoryLimit bounds the module's linear memory ("64MiB"): a multiple
	// of the 64 KiB WebAssembly page.
	MemoryLimit ByteSize `toml:"memory_limit"`
	// Grants lists what the module may use beyond pure computation (see
	// HookGrants); empty grants nothing.
	Grants []HookGrant `toml:"grants,omitempty"`
	// Config is handed to the module once, as a JSON object, when an
	// instance starts.
	Config map[string]any `toml:"config,omitempty"`
}

// HookPoints are the point names a hook may list, in the order of
// docs/hooks.md. Package hooks defines each point's event and what a patch
// may change there; its tests check the two lists agree.
var HookPoints = []string{
	"sandbox.create",
	"sandbox.vm",
	"sandbox.network",
	"container.create",
	"container.rootfs",
	"container.mount",
	"container.cgroups",
	"container.start",
	"process.exec",
	"container.update",
	"container.delete",
	"sandbox.delete",
}

// HookKind is whether a hook may change the steps it is asked about.
type HookKind string

// The hook kinds.
const (
	// HookChange hooks are asked first at each point, in config order, and
	// may patch the event (and deny).
	HookChange HookKind = "change"
	// HookCheck hooks are asked after every changing hook of the point,
	// so they see the final event; they allow or deny, and a patch from
	// one is a failure.
	HookCheck HookKind = "check"
)

// HookMode is what a hook's denial does.
type HookMode string

// The hook modes.
const (
	HookEnforce HookMode = "enforce" // a denial stops the step
	HookAudit   HookMode = "audit"   // a denial, a patch or an error is only logged
)

// HookOnError is the outcome of a hook call that fails.
type HookOnError string

// The outcomes of a failed hook call.
const (
	HookDeny  HookOnError = "deny"  // fail closed
	HookAllow HookOnError = "allow" // fail open: log and go on
)

// HookGrant is a capability beyond pure computation granted to a module.
// Without grants a module has no filesystem, network, environment or
// arguments, reads a fake clock and gets deterministic random bytes.
type HookGrant string

// The grants husk knows.
const (
	GrantClock  HookGrant = "clock"  // real wall and monotonic clocks, and sleep
	GrantRandom HookGrant = "random" // random bytes from the host's CSPRNG
)

// HookGrants lists the grants husk knows.
var HookGrants = []HookGrant{GrantClock, GrantRandom}

// Defaults of the [[hook]] keys that have one.
const (
	DefaultHookKind        = HookCheck
	DefaultHookMode        = HookEnforce
	DefaultHookOnError     = HookDeny
	DefaultHookTimeout     = Duration("1s")
	DefaultHookMemoryLimit = ByteSize("64MiB")
)

// Bounds on hook values: a call longer than MaxHookTimeout is not a policy
// decision, and 4 GiB is all a 32-bit Wasm memory can address.
const (
	MinHookTimeout     = time.Millisecond
	MaxHookTimeout     = 30 * time.Second
	WasmPageSize       = 64 << 10
	MaxHookMemoryLimit = 4 << 30
)

// WithDefaults returns h with the keys it left empty set to their
// defaults, and empty lists and tables as nil (so that equal configs
// compare equal). Load applies it to every [[hook]] entry.
func (h Hook) WithDefaults() Hook {
	if len(h.Grants) == 0 {
		h.Grants = nil
	}
	if len(h.Config) == 0 {
		h.Config = nil
	}
	if h.Kind == "" {
		h.Kind = DefaultHookKind
	}
	if h.Mode == "" {
		h.Mode = DefaultHookMode
	}
	if h.OnError == "" {
		h.OnError = DefaultHookOnError
	}
	if h.Timeout == "" {
		h.Timeout = DefaultHookTimeout
	}
	if h.MemoryLimit == "" {
		h.MemoryLimit = DefaultHookMemoryLimit
	}
	return h
}

// appendHooks returns the chain prev followed by added, the hooks a file
// declared, completed with defaults. prev is never written to: Configs
// returned earlier may share its array.
func appendHooks(prev, added []Hook) []Hook {
	if len(added) == 0 {
		return prev
	}
	out := slices.Clip(prev)
	for _, h := range added {
		out = append(out, h.WithDefaults())
	}
	return out
}
