package shim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// quickProc is a process whose program (with quick) ends the moment it
// starts, as `true` does: its exit races the start's reply.
type quickProc struct {
	pid   int
	quick bool
	once  sync.Once
	done  chan struct{}
}

func (p *quickProc) Pid() int { return p.pid }
func (p *quickProc) Start(context.Context) error {
	if p.quick {
		p.once.Do(func() { close(p.done) })
	}
	return nil
}
func (p *quickProc) Signal(context.Context, syscall.Signal, bool) error { return nil }
func (p *quickProc) ResizePty(context.Context, uint32, uint32) error    { return nil }
func (p *quickProc) CloseStdin(context.Context) error                   { return nil }
func (p *quickProc) Done() <-chan struct{}                              { return p.done }
func (p *quickProc) Exit() handler.Exit {
	return handler.Exit{Pid: p.pid, At: time.Now()}
}
func (p *quickProc) Close(context.Context) error { return nil }

type quickContainer struct{ init *quickProc }

func (c *quickContainer) Init() handler.Process { return c.init }
func (c *quickContainer) Exec(context.Context, string, *specs.Process, handler.Stdio) (handler.Process, error) {
	return &quickProc{pid: c.init.pid + 1, quick: true, done: make(chan struct{})}, nil
}
func (c *quickContainer) Pause(context.Context) error                         { return nil }
func (c *quickContainer) Resume(context.Context) error                        { return nil }
func (c *quickContainer) Update(context.Context, *specs.LinuxResources) error { return nil }
func (c *quickContainer) Stats(context.Context) (any, error)                  { return nil, nil }
func (c *quickContainer) Pids(context.Context) ([]int, error)                 { return nil, nil }
func (c *quickContainer) OOM() <-chan struct{}                                { return nil }
func (c *quickContainer) Delete(context.Context) error                        { return nil }

// quickHandler makes quickContainers: an init running `true` ends at once,
// and so does every exec.
type quickHandler struct{}

func (quickHandler) Name() string { return "linux" }
func (quickHandler) Create(_ context.Context, req *handler.CreateRequest) (handler.Container, error) {
	quick := req.Spec.Process.Args[0] == "true"
	return &quickContainer{init: &quickProc{pid: 1000, quick: quick, done: make(chan struct{})}}, nil
}
func (quickHandler) Cleanup(context.Context, string, string, string) (int, error) { return 0, nil }
func (h quickHandler) NewSandbox(context.Context, *handler.SandboxRequest) (handler.Sandbox, error) {
	return h, nil
}
func (quickHandler) CleanupSandbox(context.Context, string) error { return nil }
func (quickHandler) Close(context.Context) error                  { return nil }

// eventLog is a shim.Publisher keeping what it was given, in order.
type eventLog struct {
	mu     sync.Mutex
	events []events.Event
}

func (l *eventLog) Publish(_ context.Context, _ string, e events.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}
func (l *eventLog) Close() error { return nil }

// seen returns the log as "topic:id" strings once it holds n events.
func (l *eventLog) seen(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		got := len(l.events)
		l.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events published, want %d", got, n)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		switch e := e.(type) {
		case *eventstypes.TaskStart:
			out = append(out, "start:"+e.ContainerID)
		case *eventstypes.TaskExecStarted:
			out = append(out, "exec-started:"+e.ExecID)
		case *eventstypes.TaskExit:
			out = append(out, "exit:"+e.ID)
		case *eventstypes.TaskExecAdded:
			out = append(out, "exec-added:"+e.ExecID)
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return out
}

// TestExitIsPublishedAfterStart: a process that ends as soon as it starts
// still has its TaskStart (TaskExecStarted for an exec) published before
// its TaskExit, as the runc shim guarantees; consumers of the event stream
// (moby, nerdctl) rely on that order.
func TestExitIsPublishedAfterStart(t *testing.T) {
	ctx, sd := shutdown.WithShutdown(namespaces.WithNamespace(context.Background(), "ns"))
	defer sd.Shutdown()
	log := &eventLog{}
	s := newService(ctx, runtime.NewManager(quickHandler{}), log, sd, new(slog.LevelVar))
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()

	const rounds = 200
	for i := range rounds {
		id := fmt.Sprintf("c%d", i)
		req := &handler.CreateRequest{ID: id, Namespace: "ns", Bundle: t.TempDir(), Config: &cfg,
			Spec: &specs.Spec{Process: &specs.Process{Args: []string{"true"}}}}
		task, err := s.mgr.Create(ctx, req, s.events)
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		s.tasks[id] = task
		s.mu.Unlock()
		if _, err := s.Start(ctx, &taskAPI.StartRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Wait(ctx, &taskAPI.WaitRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	got := log.seen(t, 2*rounds)
	seen := map[string]bool{}
	for _, e := range got {
		seen[e] = true
		var id string
		if _, err := fmt.Sscanf(e, "exit:%s", &id); err == nil && !seen["start:"+id] {
			t.Fatalf("TaskExit of %s published before its TaskStart (%d events)", id, len(got))
		}
	}
}

// TestExecExitIsPublishedAfterExecStarted is the same for execs.
func TestExecExitIsPublishedAfterExecStarted(t *testing.T) {
	ctx, sd := shutdown.WithShutdown(namespaces.WithNamespace(context.Background(), "ns"))
	defer sd.Shutdown()
	log := &eventLog{}
	s := newService(ctx, runtime.NewManager(quickHandler{}), log, sd, new(slog.LevelVar))
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()

	// An init that keeps running: its program has not ended on Start.
	req := &handler.CreateRequest{ID: "c", Namespace: "ns", Bundle: t.TempDir(), Config: &cfg,
		Spec: &specs.Spec{Process: &specs.Process{Args: []string{"sleep"}}}}
	task, err := s.mgr.Create(ctx, req, s.events)
	if err != nil {
		t.Fatal(err)
	}
	s.tasks["c"] = task
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	spec := anyOf(t, &taskAPI.StateRequest{}) // any non-nil value; the JSON below is what counts
	spec.Value = []byte(`{"args":["true"],"cwd":"/"}`)
	for i := range rounds {
		id := fmt.Sprintf("e%d", i)
		if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "c", ExecID: id, Spec: spec}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(ctx, &taskAPI.StartRequest{ID: "c", ExecID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Wait(ctx, &taskAPI.WaitRequest{ID: "c", ExecID: id}); err != nil {
			t.Fatal(err)
		}
	}
	got := log.seen(t, 3*rounds)
	seen := map[string]bool{}
	for _, e := range got {
		seen[e] = true
		var id string
		if _, err := fmt.Sscanf(e, "exit:%s", &id); err == nil && !seen["exec-started:"+id] {
			t.Fatalf("TaskExit of exec %s published before its TaskExecStarted (%d events)", id, len(got))
		}
	}
}
