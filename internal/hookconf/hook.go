package hookconf

import "time"

// Hook configures one hook module: a Wasm module husk asks, at each of its
// points, whether a resource-setup step may go on and with what changes
// (package hooks runs them; docs/hooks.md is the operator's guide).
//
// Hooks are the [[hook]] array of tables. The chain at a point is the hooks
// naming that point, in the order they are written; a drop-in's [[hook]]
// entries are appended after those of the files before it (a later file
// cannot remove or change an earlier file's hook). config.Load fills the
// defaults of the keys a [[hook]] entry leaves out, so a loaded Hook is
// complete.
type Hook struct {
	// Name identifies the hook in logs and in the errors users see. Unique,
	// made of lower-case letters, digits, '.', '_' and '-'.
	Name string `toml:"name"`
	// Module is the absolute, clean path of the .wasm file.
	Module string `toml:"module"`
	// SHA256, when set, pins the module's content: 64 lower-case hex digits
	// that must match the file's SHA-256 digest when husk loads it.
	SHA256 string `toml:"sha256,omitempty"`
	// Points are the points the hook is asked at (vocab.Points lists them).
	Points []string `toml:"points"`
	// Kind says whether the hook changes steps or only checks them:
	// changing hooks run first at each point, then checking hooks see the
	// final event (and container.create's see the container again when a
	// later point changes it); a checking hook's patch is a failure.
	Kind Kind `toml:"kind"`
	// Mode is what a denial does: stop the step (enforce) or be logged (audit).
	Mode Mode `toml:"mode"`
	// OnError is the outcome when the module fails (trap, deadline, memory,
	// garbage output, missing export): deny (fail closed) or allow.
	OnError OnError `toml:"on_error"`
	// Timeout bounds one call into the module, as a Go duration ("1s"). It
	// is a wall-clock safety net against a runaway module, not a budget: a
	// call takes microseconds, but a loaded node can delay any thread by
	// tens of milliseconds, and a call past its deadline is a failure.
	Timeout Duration `toml:"timeout"`
	// MemoryLimit bounds the module's linear memory ("64MiB"): a multiple
	// of the 64 KiB WebAssembly page.
	MemoryLimit ByteSize `toml:"memory_limit"`
	// Grants lists what the module may use beyond pure computation (see
	// Grants); empty grants nothing.
	Grants []Grant `toml:"grants,omitempty"`
	// Config is handed to the module once, as a JSON object, when an
	// instance starts.
	Config map[string]any `toml:"config,omitempty"`
}

// Kind is whether a hook may change the steps it is asked about.
type Kind string

// The hook kinds.
const (
	// Change hooks are asked first at each point, in config order, and
	// may patch the event (and deny).
	Change Kind = "change"
	// Check hooks are asked after every changing hook of the point, so
	// they see the final event; they allow or deny, and a patch from one
	// is a failure.
	Check Kind = "check"
)

// Mode is what a hook's denial does.
type Mode string

// The hook modes.
const (
	Enforce Mode = "enforce" // a denial stops the step
	Audit   Mode = "audit"   // a denial, a patch or an error is only logged
)

// OnError is the outcome of a hook call that fails.
type OnError string

// The outcomes of a failed hook call.
const (
	Deny  OnError = "deny"  // fail closed
	Allow OnError = "allow" // fail open: log and go on
)

// Grant is a capability beyond pure computation granted to a module.
// Without grants a module has no filesystem, network, environment or
// arguments, reads a fake clock and gets deterministic random bytes.
type Grant string

// The grants husk knows.
const (
	GrantClock  Grant = "clock"  // real wall and monotonic clocks, and sleep
	GrantRandom Grant = "random" // random bytes from the host's CSPRNG
)

// Grants lists the grants husk knows.
var Grants = []Grant{GrantClock, GrantRandom}

// Defaults of the [[hook]] keys that have one.
const (
	DefaultKind        = Check
	DefaultMode        = Enforce
	DefaultOnError     = Deny
	DefaultTimeout     = Duration("1s")
	DefaultMemoryLimit = ByteSize("64MiB")
)

// Bounds on hook values: a call longer than MaxTimeout is not a policy
// decision, and 4 GiB is all a 32-bit Wasm memory can address.
const (
	MinTimeout     = time.Millisecond
	MaxTimeout     = 30 * time.Second
	WasmPageSize   = 64 << 10
	MaxMemoryLimit = 4 << 30
)

// WithDefaults returns h with the keys it left empty set to their
// defaults, and empty lists and tables as nil (so that equal configs
// compare equal). config.Load applies it to every [[hook]] entry.
func (h Hook) WithDefaults() Hook {
	if len(h.Grants) == 0 {
		h.Grants = nil
	}
	if len(h.Config) == 0 {
		h.Config = nil
	}
	if h.Kind == "" {
		h.Kind = DefaultKind
	}
	if h.Mode == "" {
		h.Mode = DefaultMode
	}
	if h.OnError == "" {
		h.OnError = DefaultOnError
	}
	if h.Timeout == "" {
		h.Timeout = DefaultTimeout
	}
	if h.MemoryLimit == "" {
		h.MemoryLimit = DefaultMemoryLimit
	}
	return h
}
