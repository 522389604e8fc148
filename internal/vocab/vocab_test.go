package vocab

import (
	"slices"
	"testing"
)

// TestListsAreSets: no name is listed twice, and each list's lookup
// accepts exactly its names (a misspelling or another list's name is
// refused).
func TestListsAreSets(t *testing.T) {
	for _, tt := range []struct {
		name  string
		list  []string
		is    func(string) bool
		other []string
	}{
		{"points", Points(), IsPoint, Handlers()},
		{"handlers", Handlers(), IsHandler, Points()},
	} {
		sorted := slices.Sorted(slices.Values(tt.list))
		if len(slices.Compact(sorted)) != len(tt.list) {
			t.Errorf("%s: a name is listed twice: %q", tt.name, tt.list)
		}
		for _, n := range tt.list {
			if !tt.is(n) {
				t.Errorf("%s: %q is not accepted", tt.name, n)
			}
			if tt.is(n + "x") {
				t.Errorf("%s: %q is accepted", tt.name, n+"x")
			}
		}
		for _, n := range append(tt.other, "", "Linux", "container.craete") {
			if tt.is(n) {
				t.Errorf("%s: %q is accepted", tt.name, n)
			}
		}
	}
}

// TestPointsIsACopy: a caller changing the slice it got changes nothing.
func TestPointsIsACopy(t *testing.T) {
	p := Points()
	p[0] = "changed"
	if Points()[0] != SandboxCreate {
		t.Fatal("Points shares its array with callers")
	}
	h := Handlers()
	h[0] = "changed"
	if !IsHandler(Linux) {
		t.Fatal("Handlers shares its array with callers")
	}
}
