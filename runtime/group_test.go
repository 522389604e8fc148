package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestShimGroup(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ann    map[string]string
		group  string
		shared bool
	}{
		{"alone", nil, "c1", false},
		{"pod container", map[string]string{annContainerType: "container", annSandboxID: "pod1"}, "pod1", true},
		{"pod sandbox", map[string]string{annContainerType: "sandbox", annSandboxID: "c1"}, "c1", true},
		{"group", map[string]string{AnnotationGroup: "web-1.x_y"}, "group:web-1.x_y", true},
		{"pod wins over group", map[string]string{annContainerType: "container", annSandboxID: "pod1", AnnotationGroup: "g"}, "pod1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, shared, err := ShimGroup("c1", tt.ann)
			if err != nil || g != tt.group || shared != tt.shared {
				t.Errorf("ShimGroup = %q, %v, %v; want %q, %v", g, shared, err, tt.group, tt.shared)
			}
		})
	}
	for _, bad := range []string{"", "a/b", "a b", "../x", strings.Repeat("a", maxGroupLen+1), "é"} {
		_, _, err := ShimGroup("c1", map[string]string{AnnotationGroup: bad})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), AnnotationGroup) {
			t.Errorf("group %q: error %v, want an invalid argument naming the annotation", bad, err)
		}
	}
}
