package runtime

import (
	"context"
	"errors"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
)

// TestStartPatchCannotMakeRoot: a container.start patch that names no uid
// (the user replaced by null or {}, or its uid removed) fails the hook,
// and so the create, instead of starting the process as uid 0, gid 0.
func TestStartPatchCannotMakeRoot(t *testing.T) {
	for _, patch := range []string{
		`[{"op":"replace","path":"/process/user","value":null}]`,
		`[{"op":"replace","path":"/process/user","value":{}}]`,
		`[{"op":"remove","path":"/process/user/uid"},{"op":"remove","path":"/process/user/gid"}]`,
	} {
		t.Run(patch, func(t *testing.T) {
			cfg := config.Default()
			cfg.Runtime.StateDir = t.TempDir()
			cfg.Hooks = []config.Hook{decisionHook(t, `{"allow":true,"patch":`+patch+`}`, "container.start")}
			h := &vmHandler{}
			m := NewManager(fakeHandler("linux"), h)
			req := virtPodReq(t, &cfg, "pod", "sandbox")
			req.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
			_, err := m.Create(context.Background(), req, &recorder{})
			if !errors.Is(err, errdefs.ErrPermissionDenied) {
				t.Fatalf("Create: %v, want the failing hook's permission denied", err)
			}
			if h.created != 0 {
				t.Errorf("the handler created %d containers, want none", h.created)
			}
			if u := req.Spec.Process.User; u.UID != 1000 || u.GID != 1000 {
				t.Errorf("the spec's user became %+v", u)
			}
		})
	}
}
