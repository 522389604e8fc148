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

	"github.com/huskrt/husk/runtime/handler"
)

// fakeProc is a process that exits when signalled.
type fakeProc struct {
	mu      sync.Mutex
	pid     int
	started bool
	done    chan struct{}
	exit    handler.Exit
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
		p.exit = handler.Exit{Pid: p.pid, Status: status, At: time.Now()}
		close(p.done)
	}
}
func (p *fakeProc) ResizePty(context.Context, uint32, uint32) error { return nil }
func (p *fakeProc) CloseStdin(context.Context) error                { return nil }
func (p *fakeProc) Done() <-chan struct{}                           { return p.done }
func (p *fakeProc) Exit() handler.Exit                              { return p.exit }
func (p *fakeProc) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

type fakeContainer struct {
	init    *fakeProc
	execs   map[string]*fakeProc
	oom     chan struct{} // nil: OOM kills not watched
	deleted bool
	updates []*specs.LinuxResources // what Update was given
}

func (c *fakeContainer) Init() handler.Process { return c.init }
func (c *fakeContainer) Exec(_ context.Context, id string, _ *specs.Process, _ handler.Stdio) (handler.Process, error) {
	p := newFakeProc(100 + len(c.execs))
	c.execs[id] = p
	return p, nil
}
func (c *fakeContainer) Pause(context.Context) error  { return nil }
func (c *fakeContainer) Resume(context.Context) error { return nil }
func (c *fakeContainer) Update(_ context.Context, res *specs.LinuxResources) error {
	c.updates = append(c.updates, res)
	return nil
}
func (c *fakeContainer) Stats(context.Context) (any, error)  { return nil, nil }
func (c *fakeContainer) Pids(context.Context) ([]int, error) { return nil, nil }
func (c *fakeContainer) OOM() <-chan struct{}                { return c.oom }
func (c *fakeContainer) Delete(context.Context) error        { c.deleted = true; return nil }

// recorder is an Observer remembering exits and OOM kills in order.
type recorder struct {
	mu    sync.Mutex
	exits []string
}

func (r *recorder) Started(string, string, int) {}
func (r *recorder) Exited(_, execID string, _ handler.Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exits = append(r.exits, "exit:"+execID)
}
func (r *recorder) OOM(string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exits = append(r.exits, "oom")
}

func newFakeTask(t *testing.T) (*Task, *fakeContainer, *recorder) {
	t.Helper()
	c := &fakeContainer{init: newFakeProc(42), execs: map[string]*fakeProc{}}
	r := &recorder{}
	return newTask(context.Background(), "t", "/b", "fake", c, handler.Stdio{}, r), c, r
}

func TestTaskLifecycle(t *testing.T) {
	ctx := context.Background()
	task, c, rec := newFakeTask(t)

	if err := task.Exec(ctx, "e1", &specs.Process{}, handler.Stdio{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec before start: %v, want failed precondition", err)
	}
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Start(ctx, ""); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second start: %v", err)
	}
	if err := task.Exec(ctx, "e1", &specs.Process{}, handler.Stdio{}); err != nil {
		t.Fatal(err)
	}
	if err := task.Exec(ctx, "e1", &specs.Process{}, handler.Stdio{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
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
	if err := task.Exec(ctx, "e2", &specs.Process{}, handler.Stdio{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
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

// TestKillCreatedExecFailsPrecondition: an exec that was added but not
// started has no process to signal. Kill says so with a classified error
// (as the runc shim does: "process not created", FailedPrecondition)
// instead of reaching the handler, where libcontainer answers an
// unclassified "invalid process" that ctr shows as Unknown.
func TestKillCreatedExecFailsPrecondition(t *testing.T) {
	ctx := context.Background()
	task, c, _ := newFakeTask(t)
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := task.Exec(ctx, "e1", &specs.Process{}, handler.Stdio{}); err != nil {
		t.Fatal(err)
	}
	for _, all := range []bool{false, true} {
		if err := task.Kill(ctx, "e1", syscall.SIGTERM, all); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("kill (all=%v) of a created exec: %v, want failed precondition", all, err)
		}
	}
	select {
	case <-c.execs["e1"].done:
		t.Fatal("the created exec's handler process was signalled")
	default:
	}
	// The created init can still be killed: it exists, waiting for Start.
	task2, c2, _ := newFakeTask(t)
	if err := task2.Kill(ctx, "", syscall.SIGKILL, false); err != nil {
		t.Fatalf("kill of a created init: %v", err)
	}
	<-c2.init.done
}

// TestOOMBeforeExit: an OOM kill that the container reports only after its
// init was reaped (the kernel's notification came in late) is still
// published before the init's exit, and Wait returns only after it: the
// init's exit waits until the container closes its OOM channel.
func TestOOMBeforeExit(t *testing.T) {
	ctx := context.Background()
	c := &fakeContainer{init: newFakeProc(42), execs: map[string]*fakeProc{}, oom: make(chan struct{}, 1)}
	rec := &recorder{}
	task := newTask(ctx, "t", "/b", "fake", c, handler.Stdio{}, rec)
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c.init.finish(137)
	time.Sleep(20 * time.Millisecond)
	if st, _ := task.Status(""); st.State != Running {
		t.Fatalf("init reported %v while its container's OOM channel is open", st.State)
	}
	c.oom <- struct{}{}
	close(c.oom)
	if e, err := task.Wait(ctx, ""); err != nil || e.Status != 137 {
		t.Fatalf("wait init = %v, %v", e, err)
	}
	rec.mu.Lock()
	got := append([]string(nil), rec.exits...)
	rec.mu.Unlock()
	if len(got) != 2 || got[0] != "oom" || got[1] != "exit:" {
		t.Fatalf("events = %v, want [oom exit:]", got)
	}
}

// slowRecorder is a recorder that takes its time to hear of an exit.
type slowRecorder struct{ recorder }

func (r *slowRecorder) Exited(c, execID string, e handler.Exit) {
	time.Sleep(50 * time.Millisecond)
	r.recorder.Exited(c, execID, e)
}

// TestExitToldBeforeWaitReturns: the observer has heard of an exit by the
// time Wait returns, so that the TaskDelete of a Delete that follows a
// Wait cannot be queued before the TaskExit.
func TestExitToldBeforeWaitReturns(t *testing.T) {
	ctx := context.Background()
	c := &fakeContainer{init: newFakeProc(42), execs: map[string]*fakeProc{}}
	rec := &slowRecorder{}
	task := newTask(ctx, "t", "/b", "fake", c, handler.Stdio{}, rec)
	if _, err := task.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c.init.finish(0)
	if _, err := task.Wait(ctx, ""); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	got := append([]string(nil), rec.exits...)
	rec.mu.Unlock()
	if len(got) != 1 || got[0] != "exit:" {
		t.Fatalf("observer heard %v when Wait returned, want [exit:]", got)
	}
}
