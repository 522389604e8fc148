//go:build !husk_nohooks

package hooks

import (
	"testing"

	"github.com/huskrt/husk/internal/vocab"
)

// TestPointTableIsVocab: the engine's table of points (event type and
// patch rules) has a row for every point vocab lists and none for a name
// vocab does not, so that a point added to vocab without an event, or an
// event for a point the config file would refuse, fails here.
func TestPointTableIsVocab(t *testing.T) {
	for _, name := range vocab.Points() {
		if _, ok := points[Point(name)]; !ok {
			t.Errorf("vocab lists %q, the engine has no event for it", name)
		}
	}
	for p := range points {
		if !vocab.IsPoint(string(p)) {
			t.Errorf("the engine has an event for %q, which vocab does not list", p)
		}
	}
}
