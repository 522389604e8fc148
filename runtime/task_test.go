package runtime

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeProc is a process that exits when signalled.
type fakeProc struct {
	mu      sync.Mutex
	pid     int
	started bool
	done    chan struct{}
	exit    Exit
	closed  bool
}

func newFakeProc(pid int) *fakeProc { return &fakeProc{pid: pid, done: make(chan struct{})} }

func (p *fakeProc) Pid() int { return p.pid }
func (p *fakeProc) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = true
	return nil
}
func (p *fakeProc) Signal(_ context.Context, sig syscall.Signal, _ bool) error {
	p.finish(128 + int(sig))
	return nil
}
func (p *fakeProc) finish(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
	default:
		p.exit = Exit{Pid: p.pid, Status: status, At: time.Now()}
		close(p.done)
	}
}
func (p *fakeProc) ResizePty(context.Context, uint32, uint32) error { return nil }
func (p *fakeProc) CloseStdin(context.Context) error                { return nil }
func (p *fakeProc) Done() <-chan struct{}                           { return p.done }
func (p *fakeProc) Exit() Exit                                      { return p.exit }
func (p *fakeProc) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

type fakeContainer struct {
	init    *fakeProc
	execs   map[string]*fakeProc
	deleted bool
}

func (c *fakeContainer) Init() Process { return c.init }
func (c *fakeContainer) Exec(_ context.Context, id string, _ *specs.Process, _ Stdio) (Process, error) {
	p := newFakeProc(100 + len(c.execs))
	c.execs[id] = p
	return p, nil
}
func (c *fakeContainer) Pause(context.Context) error                         { return nil }
func (c *fakeContainer) Resume(context.Context) error                        { return nil }
func (c *fakeContainer) Update(context.Context, *specs.LinuxResources) error { return nil }
func (c *fakeContainer) Stats(context.Context) (any, error)                  { return nil, nil }
func (c *fakeContainer) Pids(context.Context) ([]int, error)                 { return nil, nil }
func (c *fakeContainer) OOM() <-chan struct{}                                { return nil }
func (c *fakeContainer) Delete(context.Context) error                        { c.deleted = true; return nil }

// recorder is an Observer remembering exits in order.
type recorder struct {
	mu    sync.Mutex
	exits []string
}

func (r *recorder) Exited(_, execID string, _ Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exits = append(r.exits, "exit:"+execID)
}
func (r *recorder) OOM(string) {}

func newFakeTask(t *testing.T) (*Task, *fakeContainer, *recorder) {
	t.Helper()
	c := &fakeContainer{init: newFakeProc(42), execs: map[string]*fakeProc{}}
	r := &recorder{}
	return newTask(context.Background(), "t", "/b", "fake", c, Stdio{}, r), c, r
}

func TestTaskLifecycle(t *testing.T) {
	ctx := context.Background()
	task, c, rec := newFakeTask(t)

	if err := task.Exec(ctx, "e1", &specs.Process{}, Stdio{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec before start: %v, want failed precondition", err)
	}
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Start(ctx, ""); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second start: %v", err)
	}
	if err := task.Exec(ctx, "e1", &specs.Process{}, Stdio{}); err != nil {
		t.Fatal(err)
	}
	if err := task.Exec(ctx, "e1", &specs.Process{}, Stdio{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate exec id: %v", err)
	}
	if _, err := task.Start(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Delete(ctx, ""); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("delete running: %v", err)
	}
	if err := task.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := task.Exec(ctx, "e2", &specs.Process{}, Stdio{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec while paused: %v", err)
	}
	if err := task.Resume(ctx); err != nil {
		t.Fatal(err)
	}

	// The init dies first; its exit is reported only after the exec's.
	c.init.finish(0)
	time.Sleep(20 * time.Millisecond)
	if st, _ := task.Status(""); st.State != Running {
		t.Fatalf("init reported stopped while an exec runs: %v", st.State)
	}
	c.execs["e1"].finish(3)
	e, err := task.Wait(ctx, "")
	if err != nil || e.Status != 0 {
		t.Fatalf("wait init = %v, %v", e, err)
	}
	if e, _ := task.Wait(ctx, "e1"); e.Status != 3 {
		t.Fatalf("exec status = %d, want 3", e.Status)
	}
	rec.mu.Lock()
	got := append([]string(nil), rec.exits...)
	rec.mu.Unlock()
	if len(got) != 2 || got[0] != "exit:e1" || got[1] != "exit:" {
		t.Fatalf("exit order = %v, want [exit:e1 exit:]", got)
	}
	if err := task.Kill(ctx, "", syscall.SIGTERM, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("kill exited: %v, want not found", err)
	}
	if _, err := task.Delete(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if !c.deleted || !c.init.closed || !c.execs["e1"].closed {
		t.Fatal("delete did not release container and processes")
	}
	if _, err := task.Delete(ctx, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestDeleteNeverStartedKillsInit(t *testing.T) {
	task, c, _ := newFakeTask(t)
	st, err := task.Delete(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Exit.Status != 128+int(syscall.SIGKILL) || !c.deleted {
		t.Fatalf("delete of created task: status %d deleted %v", st.Exit.Status, c.deleted)
	}
}
