package hooks

import "time"

// Exported for the tests of package hooks_test.
var (
	ApplyPatch = func(doc []byte, ops []Op) ([]byte, error) { return applyPatch(doc, ops, time.Time{}) }
	// ApplyPatchBy applies with a deadline.
	ApplyPatchBy = applyPatch
	CheckOps     = func(p Point, ops []Op) error { return checkOps(points[p].rules, ops) }
)

var LoadOrder = loadOrder
