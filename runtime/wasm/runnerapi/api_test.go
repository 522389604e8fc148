package runnerapi

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePreopens(t *testing.T) {
	good := []struct {
		in   string
		want []Preopen
	}{
		{"", nil},
		{"/", []Preopen{{"/", "/"}}},
		{"/data", []Preopen{{"/data", "/data"}}},
		{"/suite/fs-tests.dir:/,/tmp:tmp", []Preopen{{"/suite/fs-tests.dir", "/"}, {"/tmp", "tmp"}}},
		{"/a:.", []Preopen{{"/a", "."}}},
	}
	for _, tt := range good {
		got, err := ParsePreopens(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, why string }{
		{",", "no directory"},
		{"/a,", "no directory"},
		{":/", "no directory"},
		{"/a:", "empty name"},
		{"a", "not an absolute path"},
		{"/a/../b", "not a clean path"},
		{"/a/", "not a clean path"},
		{"/a//b", "not a clean path"},
		{"/a:b:c", "second"},
		{"/a\x00b", "NUL"},
		{"/a:x,/b:x", "comes twice"},
		{"/,/", "comes twice"},
		{strings.Repeat("/a", MaxPreopenLength), "longer than"},
		{strings.Repeat("/a,", MaxPreopens) + "/b", "more than"},
	}
	for _, tt := range bad {
		if _, err := ParsePreopens(tt.in); err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%.50q: %v, want an error saying %q", tt.in, err, tt.why)
		}
	}
}
