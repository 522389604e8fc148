package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
)

// hookedTask creates and starts container "c", alone in its pod, under
// the given hooks.
func hookedTask(t *testing.T, hs ...config.Hook) (*Manager, *Task) {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	cfg.Hooks = hs
	m := NewManager(&podHandler{name: "linux"})
	req := podReq(t, &cfg, "c", nil)
	req.Spec.Process = &specs.Process{Args: []string{"sleep", "1000"}}
	req.Spec.Root = &specs.Root{Path: "rootfs"}
	task, err := m.Create(ctx, req, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	return m, task
}

// TestUpdateDeniedByHook: an enforcing hook's denial at container.update
// refuses the update (a permission error naming hook and reason) before
// the handler sees it; an audit-mode one lets it through.
func TestUpdateDeniedByHook(t *testing.T) {
	ctx := context.Background()
	limit := int64(256 << 20)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}

	deny := decisionHook(t, `{"allow":false,"reason":"limits are fixed"}`, "container.update")
	m, task := hookedTask(t, deny)
	defer m.Deleted(ctx, task)
	err := task.Update(ctx, res)
	if !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("update against a denying hook: %v, want a permission error", err)
	}
	for _, want := range []string{`hook "scripted" denied container.update`, "limits are fixed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("update error lacks %q: %v", want, err)
		}
	}
	if got := task.c.(*fakeContainer).updates; len(got) != 0 {
		t.Fatalf("the handler applied %d denied updates", len(got))
	}

	audit := deny
	audit.Mode = config.HookAudit
	m2, task2 := hookedTask(t, audit)
	defer m2.Deleted(ctx, task2)
	if err := task2.Update(ctx, res); err != nil {
		t.Fatalf("update under an audit-mode denial: %v", err)
	}
	if got := task2.c.(*fakeContainer).updates; len(got) != 1 || *got[0].Memory.Limit != limit {
		t.Fatalf("the handler got updates %v, want the one asked", got)
	}
}
