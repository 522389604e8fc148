package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/persist"
)

// podHandler creates fake containers and remembers the requests.
type podHandler struct {
	name string
	reqs []*handler.CreateRequest
	fail bool
}

func (h *podHandler) Name() string { return h.name }
func (h *podHandler) Create(_ context.Context, req *handler.CreateRequest) (handler.Container, error) {
	h.reqs = append(h.reqs, req)
	if h.fail {
		return nil, errors.New("boom")
	}
	return &fakeContainer{init: newFakeProc(1), execs: map[string]*fakeProc{}}, nil
}
func (h *podHandler) NewSandbox(context.Context, *handler.SandboxRequest) (handler.Sandbox, error) {
	return createOnly(h.Create), nil
}
func (h *podHandler) CleanupSandbox(context.Context, string) error                 { return nil }
func (h *podHandler) Cleanup(context.Context, string, string, string) (int, error) { return 0, nil }

func podReq(t *testing.T, cfg *config.Config, id string, ann map[string]string) *handler.CreateRequest {
	return &handler.CreateRequest{ID: id, Namespace: "ns", Bundle: t.TempDir(), Config: cfg,
		Spec: &specs.Spec{Annotations: ann}}
}

func TestPodSharesSandbox(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	h := &podHandler{name: "linux"}
	m := NewManager(h)
	obs := &recorder{}

	sb, err := m.Create(ctx, podReq(t, &cfg, "sb", map[string]string{annContainerType: "sandbox", annSandboxID: "sb"}), obs)
	if err != nil {
		t.Fatal(err)
	}
	other := cfg // a later config must not change the running pod's
	other.Runtime.DefaultHandler = "wasm"
	c1, err := m.Create(ctx, podReq(t, &other, "c1", map[string]string{annContainerType: "container", annSandboxID: "sb"}), obs)
	if err != nil {
		t.Fatalf("pod container: %v", err)
	}
	if c1.SandboxID != "sb" || h.reqs[1].StateDir != h.reqs[0].StateDir || h.reqs[1].Config != &cfg {
		t.Fatalf("container not placed in its sandbox: %+v", h.reqs[1])
	}
	dir := persist.Dir(cfg.Runtime.StateDir, "ns", "sb")
	rec, err := persist.Read(dir)
	if err != nil || len(rec.Containers) != 2 {
		t.Fatalf("persisted %+v, %v", rec, err)
	}
	if ref, err := persist.ReadBundleRef(h.reqs[1].Bundle); err != nil || ref.StateDir != dir {
		t.Fatalf("bundle ref %+v, %v", ref, err)
	}

	if _, err := m.Create(ctx, podReq(t, &cfg, "c2", map[string]string{annContainerType: "container", annSandboxID: "elsewhere"}), obs); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("container of an unknown sandbox: %v", err)
	}
	h.fail = true
	if _, err := m.Create(ctx, podReq(t, &cfg, "c3", map[string]string{annContainerType: "container", annSandboxID: "sb"}), obs); err == nil {
		t.Fatal("failing create succeeded")
	}
	if rec, _ := persist.Read(dir); len(rec.Containers) != 2 {
		t.Fatalf("failed create left a record: %+v", rec.Containers)
	}

	m.Deleted(ctx, c1)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("state removed while the sandbox container lives: %v", err)
	}
	m.Deleted(ctx, sb)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state of an empty sandbox still there: %v", err)
	}
}

// TestFailedPodCgroupSetupClosesHooks: when a new CRI sandbox's pod cgroup
// cannot be set up (here: a malformed sizing annotation), Create fails and
// the sandbox's hook engine is released like on every other failure, and
// the chain, which admitted the sandbox, hears sandbox.delete.
func TestFailedPodCgroupSetupClosesHooks(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	// A module that cannot load, failing open: every ask is allowed, and
	// observed.
	cfg.Hooks = []config.Hook{{
		Name:        "missing",
		Module:      filepath.Join(t.TempDir(), "missing.wasm"),
		Points:      []string{"sandbox.create", "sandbox.delete"},
		Kind:        config.DefaultHookKind,
		Mode:        config.DefaultHookMode,
		OnError:     config.HookAllow,
		Timeout:     "1s",
		MemoryLimit: "16MiB",
	}}
	m := NewManager(&podHandler{name: "linux"})
	var mu sync.Mutex
	var points []string
	m.HookOptions = HookOptions{Observe: func(c hooks.Call) {
		mu.Lock()
		defer mu.Unlock()
		points = append(points, string(c.Point))
	}}
	ann := map[string]string{annContainerType: "sandbox", annSandboxID: "sb", annSandboxMemory: "lots"}
	if _, err := m.Create(ctx, podReq(t, &cfg, "sb", ann), &recorder{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("create with a malformed sizing annotation: %v, want invalid argument", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(points, "sandbox.delete") {
		t.Fatalf("hook calls %v: the admitted sandbox's hooks were never closed (no sandbox.delete)", points)
	}
}

// gatedHandler creates fake containers, holding the create of id gate until
// release is closed (entered is closed when it gets there), failing it if
// fail is set.
type gatedHandler struct {
	gate             string
	entered, release chan struct{}
	fail             bool
}

func (h *gatedHandler) Name() string { return "linux" }
func (h *gatedHandler) Create(_ context.Context, req *handler.CreateRequest) (handler.Container, error) {
	if req.ID == h.gate {
		close(h.entered)
		<-h.release
		if h.fail {
			return nil, errors.New("boom")
		}
	}
	return &fakeContainer{init: newFakeProc(1), execs: map[string]*fakeProc{}}, nil
}
func (h *gatedHandler) NewSandbox(context.Context, *handler.SandboxRequest) (handler.Sandbox, error) {
	return createOnly(h.Create), nil
}
func (h *gatedHandler) CleanupSandbox(context.Context, string) error                 { return nil }
func (h *gatedHandler) Cleanup(context.Context, string, string, string) (int, error) { return 0, nil }

// TestCreateRacingLastDelete: the deletion of a pod's last container while
// another container of the pod is being created leaves the sandbox up for
// it (its record, hooks and cgroup); if that create fails, it takes the
// sandbox down itself.
func TestCreateRacingLastDelete(t *testing.T) {
	for _, fail := range []bool{false, true} {
		ctx := context.Background()
		cfg := config.Default()
		cfg.Runtime.StateDir = t.TempDir()
		h := &gatedHandler{gate: "slow", entered: make(chan struct{}), release: make(chan struct{}), fail: fail}
		m := NewManager(h)
		obs := &recorder{}
		sb, err := m.Create(ctx, podReq(t, &cfg, "sb", map[string]string{annContainerType: "sandbox", annSandboxID: "sb"}), obs)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			task *Task
			err  error
		}
		done := make(chan result, 1)
		go func() {
			tk, err := m.Create(ctx, podReq(t, &cfg, "slow", map[string]string{annContainerType: "container", annSandboxID: "sb"}), obs)
			done <- result{tk, err}
		}()
		<-h.entered
		if m.Deleted(ctx, sb) {
			t.Fatalf("fail=%v: the sandbox went with a create in progress", fail)
		}
		close(h.release)
		r := <-done
		dir := persist.Dir(cfg.Runtime.StateDir, "ns", "sb")
		m.mu.Lock()
		_, served := m.sandboxes["sb"]
		m.mu.Unlock()
		if fail {
			if r.err == nil || served {
				t.Fatalf("failed create: err %v, sandbox still served %v", r.err, served)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("failed create left the empty sandbox's state: %v", err)
			}
			continue
		}
		if r.err != nil || !served {
			t.Fatalf("create racing the last delete: %v; sandbox served %v", r.err, served)
		}
		if rec, err := persist.Read(dir); err != nil || len(rec.Containers) != 1 || rec.Containers[0].ID != "slow" {
			t.Fatalf("record %+v, %v; want the new container alone", rec, err)
		}
		if !m.Deleted(ctx, r.task) {
			t.Fatal("the sandbox's last container went and the sandbox stayed")
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("state of an empty sandbox still there: %v", err)
		}
	}
}
