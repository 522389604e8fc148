package cri

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// TestImagesAreLocal checks that the CRI sees the bench's own images, the
// pause image pinned as its sandbox image, and that a pull never leaves the
// host: every registry resolves to devenv.NoRegistry, so it fails at once.
func TestImagesAreLocal(t *testing.T) {
	needBench(t)
	var list struct {
		Images []struct {
			RepoTags []string `json:"repoTags"`
			Pinned   bool     `json:"pinned"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(crictl(t, "images", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	pinned := map[string]bool{}
	for _, img := range list.Images {
		for _, tag := range img.RepoTags {
			pinned[tag] = img.Pinned
		}
	}
	for ref, wantPinned := range map[string]bool{devenv.PauseRef: true, devenv.BusyboxRef: false} {
		got, ok := pinned[ref]
		if !ok {
			t.Errorf("crictl images lacks %s (has %v)", ref, pinned)
		} else if got != wantPinned {
			t.Errorf("%s pinned = %v, want %v", ref, got, wantPinned)
		}
	}
	var info struct {
		Config struct {
			PinnedImages map[string]string `json:"pinnedImages"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(crictl(t, "info", "-o", "json")), &info); err == nil && info.Config.PinnedImages != nil {
		if got := info.Config.PinnedImages["sandbox"]; got != devenv.PauseRef {
			t.Errorf("sandbox image %q, want %s", got, devenv.PauseRef)
		}
	}

	t0 := time.Now()
	_, stderr, err := bench.Crictl(testCtx(t), "pull", "registry.k8s.io/pause:3.10")
	took := time.Since(t0)
	if err == nil {
		t.Fatal("crictl pull registry.k8s.io/pause:3.10 succeeded; the bench must reach no registry")
	}
	if !strings.Contains(stderr, strings.TrimPrefix(devenv.NoRegistry, "http://")) {
		t.Errorf("pull failed, but not by reaching %s: %s", devenv.NoRegistry, stderr)
	}
	if took > 10*time.Second {
		t.Errorf("the failed pull took %s; it should fail at once", took)
	}
	out := crictl(t, "images", "-q")
	if slices.ContainsFunc(strings.Fields(out), func(s string) bool { return strings.Contains(s, "registry.k8s.io") }) {
		t.Errorf("an image from registry.k8s.io appeared: %s", out)
	}
}
