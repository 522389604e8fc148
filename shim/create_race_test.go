package shim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sandboxAPI "github.com/containerd/containerd/api/runtime/sandbox/v1"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/persist"
)

// gatedHandler is quickHandler whose first Create waits until released,
// counting the Creates that reach it.
type gatedHandler struct {
	quickHandler
	mu      sync.Mutex
	creates int
	entered chan struct{} // closed when the first Create is waiting
	release chan struct{}
}

func (h *gatedHandler) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	h.mu.Lock()
	h.creates++
	first := h.creates == 1
	h.mu.Unlock()
	if first {
		close(h.entered)
		<-h.release
	}
	return h.quickHandler.Create(ctx, req)
}

func (h *gatedHandler) NewSandbox(context.Context, *handler.SandboxRequest) (handler.Sandbox, error) {
	return createOnly{h}, nil
}

// createOnly is a pod part that creates with its handler.
type createOnly struct{ h *gatedHandler }

func (p createOnly) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	return p.h.Create(ctx, req)
}
func (createOnly) Close(context.Context) error { return nil }

// TestConcurrentCreatesOfOneID: while a Create of an id is under way, a
// second Create of the same id is refused as already existing before it
// reaches the manager; the first completes, and its task and its sandbox's
// record stay. (Both had reached the manager, and the loser's undo could
// remove the winner's record.)
func TestConcurrentCreatesOfOneID(t *testing.T) {
	ctx, sd := shutdown.WithShutdown(namespaces.WithNamespace(context.Background(), "ns"))
	defer sd.Shutdown()
	h := &gatedHandler{entered: make(chan struct{}), release: make(chan struct{})}
	s := newService(ctx, runtime.NewManager(h), &eventLog{}, sd, new(slog.LevelVar))

	state := t.TempDir()
	bundle := t.TempDir()
	spec, err := json.Marshal(&specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"sleep"}}, Root: &specs.Root{Path: "rootfs"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("[runtime]\ndefault_handler = \"linux\"\nstate_dir = \"" + state + "\"\n")})
	req := &taskAPI.CreateTaskRequest{ID: "c", Bundle: bundle, Options: opts}

	first := make(chan error, 1)
	go func() {
		_, err := s.Create(ctx, req)
		first <- err
	}()
	select {
	case <-h.entered:
	case err := <-first:
		t.Fatalf("the first create ended before reaching the handler: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the first create never reached the handler")
	}

	second := make(chan error, 1)
	go func() {
		_, err := s.Create(ctx, req)
		second <- err
	}()
	select {
	case err := <-second:
		if !errors.Is(errgrpc.ToNative(err), errdefs.ErrAlreadyExists) {
			t.Errorf("the second create: %v, want already exists", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the second create did not return while the first was under way")
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatalf("the first create: %v", err)
	}
	if h.creates != 1 {
		t.Errorf("%d creates reached the handler, want 1", h.creates)
	}
	if _, err := s.task("c"); err != nil {
		t.Errorf("the first create's task is gone: %v", err)
	}
	rec, err := persist.Read(persist.Dir(state, "ns", "c"))
	if err != nil {
		t.Fatalf("the sandbox's record: %v", err)
	}
	if len(rec.Containers) != 1 || rec.Containers[0].ID != "c" {
		t.Errorf("the sandbox's record holds %+v, want container c", rec.Containers)
	}

	// Once created, the id is still taken.
	if _, err := s.Create(ctx, req); !errors.Is(errgrpc.ToNative(err), errdefs.ErrAlreadyExists) {
		t.Errorf("a create of an existing task: %v, want already exists", err)
	}
}

// TestCreateSandboxWaitsForNoCreateOfItsID: the sandbox API's
// CreateSandbox takes the same reservation as the task API's Create: while
// a Create of an id runs, a CreateSandbox of that id is refused as already
// existing before it reaches the manager.
func TestCreateSandboxWaitsForNoCreateOfItsID(t *testing.T) {
	ctx, sd := shutdown.WithShutdown(namespaces.WithNamespace(context.Background(), "ns"))
	defer sd.Shutdown()
	h := &gatedHandler{entered: make(chan struct{}), release: make(chan struct{})}
	s := newService(ctx, runtime.NewManager(h), &eventLog{}, sd, new(slog.LevelVar))
	bundle := t.TempDir()
	spec, err := json.Marshal(&specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"sleep"}}, Root: &specs.Root{Path: "rootfs"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("[runtime]\nstate_dir = \"" + t.TempDir() + "\"\n")})
	first := make(chan error, 1)
	go func() {
		_, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "p", Bundle: bundle, Options: opts})
		first <- err
	}()
	select {
	case <-h.entered:
	case err := <-first:
		t.Fatalf("the create ended before reaching the handler: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the create never reached the handler")
	}
	_, err = s.sandboxes.CreateSandbox(ctx, &sandboxAPI.CreateSandboxRequest{SandboxID: "p", BundlePath: t.TempDir()})
	if !errors.Is(errgrpc.ToNative(err), errdefs.ErrAlreadyExists) {
		t.Errorf("CreateSandbox during a create of its id: %v, want already exists", err)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatalf("the create: %v", err)
	}
}
