//go:build !husk_nohooks

package hooks

import "time"

// Exported for the tests of package hooks_test.
var (
	ApplyPatch = func(doc []byte, ops []Op) ([]byte, error) { return applyPatch(doc, ops, time.Time{}) }
	CheckOps   = func(p Point, ops []Op) error { return checkOps(points[p].rules, ops) }
)

// Bounds on patches, which docs/hooks.md states.
const (
	MaxOps        = maxOps
	MaxCopyValues = maxCopyValues
	MaxCopyBytes  = maxCopyBytes
)

var LoadOrder = loadOrder

// LoadStarted reports whether the load of hook name's module began.
func LoadStarted(e *Engine, name string) bool {
	for _, h := range e.hooks {
		if h.name == name {
			return h.started.Load()
		}
	}
	panic("no hook " + name)
}
