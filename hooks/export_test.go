package hooks

// Exported for the tests of package hooks_test.
var (
	ApplyPatch = applyPatch
	CheckOps   = func(p Point, ops []Op) error { return checkOps(points[p].rules, ops) }
)

var LoadOrder = loadOrder
