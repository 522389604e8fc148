package config

import (
	"slices"

	"github.com/huskrt/husk/internal/hookconf"
)

// Hook is one [[hook]] entry: a Wasm module husk asks at its points
// (package hookconf defines the entry and its rules, so that package hooks
// takes it without importing config; docs/hooks.md is the operator's
// guide). The names below are hookconf's, under the names config has
// always given them.
type Hook = hookconf.Hook

// The [[hook]] entry's value types.
type (
	HookKind    = hookconf.Kind
	HookMode    = hookconf.Mode
	HookOnError = hookconf.OnError
	HookGrant   = hookconf.Grant
)

// The hook kinds, modes, on_error outcomes and grants.
const (
	HookChange  = hookconf.Change
	HookCheck   = hookconf.Check
	HookEnforce = hookconf.Enforce
	HookAudit   = hookconf.Audit
	HookDeny    = hookconf.Deny
	HookAllow   = hookconf.Allow
	GrantClock  = hookconf.GrantClock
	GrantRandom = hookconf.GrantRandom
)

// HookGrants lists the grants husk knows.
var HookGrants = hookconf.Grants

// Defaults of the [[hook]] keys that have one.
const (
	DefaultHookKind        = hookconf.DefaultKind
	DefaultHookMode        = hookconf.DefaultMode
	DefaultHookOnError     = hookconf.DefaultOnError
	DefaultHookTimeout     = hookconf.DefaultTimeout
	DefaultHookMemoryLimit = hookconf.DefaultMemoryLimit
)

// Bounds on hook values.
const (
	MinHookTimeout     = hookconf.MinTimeout
	MaxHookTimeout     = hookconf.MaxTimeout
	WasmPageSize       = hookconf.WasmPageSize
	MaxHookMemoryLimit = hookconf.MaxMemoryLimit
)

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
