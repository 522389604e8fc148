package runtime

import (
	"context"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
)

// TestCreatePatchRemovesAnAnnotation: a changing hook at container.create
// that removes an annotation of the spec removes it from the spec the
// handler gets (the patched event is decoded afresh, not into the maps of
// the request).
func TestCreatePatchRemovesAnAnnotation(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	cfg.Hooks = []config.Hook{decisionHook(t, `{"allow":true,"patch":[{"op":"remove","path":"/spec/annotations/x"}]}`, "container.create")}
	h := &podHandler{name: "linux"}
	m := NewManager(h)
	req := podReq(t, &cfg, "c", map[string]string{"x": "1", "y": "2"})
	req.Spec.Process = &specs.Process{Args: []string{"sleep", "1000"}}
	req.Spec.Root = &specs.Root{Path: "rootfs"}
	if _, err := m.Create(ctx, req, &recorder{}); err != nil {
		t.Fatal(err)
	}
	got := h.reqs[len(h.reqs)-1].Spec.Annotations
	if _, ok := got["x"]; ok || got["y"] != "2" || len(got) != 1 {
		t.Fatalf("the handler got annotations %v, want only y", got)
	}
}
