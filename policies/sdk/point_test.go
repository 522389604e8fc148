package sdk

import (
	"testing"

	"github.com/huskrt/husk/internal/vocab"
)

// TestPointsAreVocab: the SDK knows every point husk's vocabulary lists,
// in its order (the constants are its positions), and parsePoint's
// hand-made switch finds each; a name it does not know stays unknown.
func TestPointsAreVocab(t *testing.T) {
	names := vocab.Points()
	if got := int(SandboxDelete); got != len(names) {
		t.Errorf("the SDK has %d points, vocab %d", got, len(names))
	}
	for i, name := range names {
		p := Point(i + 1)
		if got := parsePoint(name); got != p {
			t.Errorf("parsePoint(%q) = %d, want %d", name, got, p)
		}
		if p.String() != name {
			t.Errorf("Point(%d).String() = %q, want %q", p, p.String(), name)
		}
	}
	for _, name := range []string{"", "sandbox.creat", "sandbox.createx", "container.craete", "sandbox.vn", "process.exe"} {
		if got := parsePoint(name); got != PointUnknown {
			t.Errorf("parsePoint(%q) = %v, want PointUnknown", name, got)
		}
	}
}
