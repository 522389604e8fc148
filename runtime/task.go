package runtime

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
)

// Observer hears what happens to tasks: starts, and what happens on its own,
// exits and OOM kills. The shim turns these into containerd events. Calls
// must not block for long.
type Observer interface {
	// Started is told of a successful Start while the task's lock is held,
	// so that it always comes before the process's Exited, however soon
	// the process ends (containerd's clients rely on that order).
	Started(containerID, execID string, pid int)
	Exited(containerID, execID string, e handler.Exit)
	OOM(containerID string)
}

// killGrace bounds how long deleting a never-started task waits for its
// killed init to be reaped.
const killGrace = 10 * time.Second

// Task is one container as containerd sees it: its handler's Container, its
// init process and its execs, each with an explicit lifecycle State. Every
// operation checks the state table before calling the handler, so handlers
// never see an illegal move.
type Task struct {
	ID        string
	Bundle    string
	Handler   string
	SandboxID string
	// SandboxDir is the state directory of the task's sandbox.
	SandboxDir string

	c   handler.Container
	obs Observer
	sb  *Sandbox // asks the sandbox's hooks; nil in tests without one
	// hooks is how the sandbox's hooks' events name the container and its
	// pod (empty in a sandbox without hooks).
	hooks hookView
	// oomDone is closed once the container's OOM channel is and every OOM
	// kill it reported is published: the init's exit waits for it.
	oomDone chan struct{}

	// mu serialises lifecycle operations and guards init, execs and every
	// proc's state and exit.
	mu    sync.Mutex
	init  *proc
	execs map[string]*proc // by exec id
}

// proc is one process of a task with its lifecycle state.
type proc struct {
	execID string
	p      handler.Process
	stdio  handler.Stdio
	state  State        // guarded by Task.mu
	exit   handler.Exit // guarded by Task.mu; valid once state >= Stopped
	// exited is closed once the exit is recorded (state is Stopped).
	exited chan struct{}
}

func newTask(ctx context.Context, id, bundle, handler string, c handler.Container, stdio handler.Stdio, obs Observer) *Task {
	t := &Task{
		ID:      id,
		Bundle:  bundle,
		Handler: handler,
		c:       c,
		obs:     obs,
		oomDone: make(chan struct{}),
		init:    &proc{p: c.Init(), stdio: stdio, state: Created, exited: make(chan struct{})},
		execs:   make(map[string]*proc),
	}
	// The init process exists from Create on (it waits for Start), so it
	// can exit (be killed) before it is started.
	go t.watch(ctx, t.init)
	go t.watchOOM()
	return t
}

// ProcessStatus is a process's state as the task API reports it.
type ProcessStatus struct {
	ExecID string
	Pid    int
	State  State
	Stdio  handler.Stdio
	Exit   handler.Exit
}

func (t *Task) get(execID string) (*proc, error) {
	if execID == "" {
		return t.init, nil
	}
	p, ok := t.execs[execID]
	if !ok {
		return nil, fmt.Errorf("exec %q of task %s: %w", execID, t.ID, errdefs.ErrNotFound)
	}
	return p, nil
}

// advance moves p by op, or says why it cannot.
// Preconditions: t.mu is held.
func (t *Task) advanceLocked(p *proc, op Op) error {
	next, err := p.state.Next(op)
	if err != nil {
		return err
	}
	p.state = next
	return nil
}

// Pid returns the init process's pid.
func (t *Task) Pid() int {
	return t.init.p.Pid()
}

// Status reports a process's state.
func (t *Task) Status(execID string) (ProcessStatus, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.get(execID)
	if err != nil {
		return ProcessStatus{}, err
	}
	return ProcessStatus{ExecID: execID, Pid: p.p.Pid(), State: p.state, Stdio: p.stdio, Exit: p.exit}, nil
}

// Start starts the init process or a prepared exec, and returns its pid.
func (t *Task) Start(ctx context.Context, execID string) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.get(execID)
	if err != nil {
		return 0, err
	}
	if execID != "" {
		if _, err := t.init.state.Next(OpExec); err != nil {
			return 0, fmt.Errorf("start exec %s: container %s: %w", execID, t.ID, err)
		}
	}
	if _, err := p.state.Next(OpStart); err != nil {
		return 0, err
	}
	if err := p.p.Start(ctx); err != nil {
		return 0, err
	}
	_ = t.advanceLocked(p, OpStart)
	pid := p.p.Pid()
	// Still under t.mu: watch must take it to record the exit before it
	// tells the observer, so Exited cannot overtake Started.
	t.obs.Started(t.ID, execID, pid)
	if execID != "" {
		go t.watch(ctx, p)
	}
	return pid, nil
}

// watch records p's exit when it happens and tells the observer. The init's
// exit is held back until every running exec has exited, so that
// containerd sees the execs' exits first (as with runc), and until the
// container's OOM kills are published, so that TaskOOM comes before the
// TaskExit of the process it killed (as with runc), and before a Wait
// that returns lets the task be deleted.
func (t *Task) watch(ctx context.Context, p *proc) {
	<-p.p.Done()
	e := p.p.Exit()
	if p == t.init {
		t.mu.Lock()
		var waits []chan struct{}
		for _, x := range t.execs {
			if x.state == Running || x.state == Paused {
				waits = append(waits, x.exited)
			}
		}
		t.mu.Unlock()
		for _, w := range waits {
			<-w
		}
		<-t.oomDone
	}
	t.mu.Lock()
	if err := t.advanceLocked(p, OpExit); err != nil {
		t.mu.Unlock()
		logging.L(ctx).Error("recording exit", "id", t.ID, "exec", p.execID, "error", err)
		return
	}
	p.exit = e
	// Told before Wait returns and under t.mu: a Delete, which needs the
	// exit recorded, cannot get its TaskDelete queued before this TaskExit.
	t.obs.Exited(t.ID, p.execID, e)
	close(p.exited)
	t.mu.Unlock()
}

// watchOOM publishes the container's OOM kills until its OOM channel
// closes, once the init has exited (see Container.OOM).
func (t *Task) watchOOM() {
	defer close(t.oomDone)
	oom := t.c.OOM()
	if oom == nil {
		return
	}
	for range oom {
		t.obs.OOM(t.ID)
	}
}

// Wait blocks until the process has exited, or ctx ends.
func (t *Task) Wait(ctx context.Context, execID string) (handler.Exit, error) {
	t.mu.Lock()
	p, err := t.get(execID)
	t.mu.Unlock()
	if err != nil {
		return handler.Exit{}, err
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		return handler.Exit{}, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return p.exit, nil
}

// Kill signals a process, or every process of the container with all.
func (t *Task) Kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.get(execID)
	if err != nil {
		return err
	}
	if _, err := p.state.Next(OpKill); err != nil {
		return err
	}
	if p != t.init && p.state == Created {
		// Unlike a created init (which exists, waiting for Start), a
		// created exec has no process yet; the runc shim answers the same.
		return fmt.Errorf("cannot kill exec %s of task %s: process not created: %w", execID, t.ID, errdefs.ErrFailedPrecondition)
	}
	return p.p.Signal(ctx, sig, all)
}

// Exec prepares a new process in the running container, once the
// sandbox's hooks have admitted it (process.exec). The hooks are asked
// without t.mu held: a slow module must not hold up State, Kill or the
// recording of an exit for up to its deadline. So the exec is checked
// before the hooks and again after them: the container may have stopped
// or been deleted meanwhile, or got an exec of the same id, and the exec
// then fails as it would have at first, with nothing created.
func (t *Task) Exec(ctx context.Context, execID string, spec *specs.Process, stdio handler.Stdio) error {
	t.mu.Lock()
	err := t.canExecLocked(execID)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := t.sb.admitExec(ctx, t.hooks, execID, spec); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.canExecLocked(execID); err != nil {
		return err
	}
	p, err := t.c.Exec(ctx, execID, spec, stdio)
	if err != nil {
		return err
	}
	t.execs[execID] = &proc{execID: execID, p: p, stdio: stdio, state: Created, exited: make(chan struct{})}
	return nil
}

// canExecLocked says why exec execID cannot be added now, if it cannot.
// Preconditions: t.mu is held.
func (t *Task) canExecLocked(execID string) error {
	if _, ok := t.execs[execID]; ok {
		return fmt.Errorf("exec %q of task %s: %w", execID, t.ID, errdefs.ErrAlreadyExists)
	}
	if _, err := t.init.state.Next(OpExec); err != nil {
		return fmt.Errorf("exec in container %s: %w", t.ID, err)
	}
	return nil
}

// Pause freezes the container.
func (t *Task) Pause(ctx context.Context) error {
	return t.containerOp(ctx, OpPause, t.c.Pause)
}

// Resume thaws the container.
func (t *Task) Resume(ctx context.Context) error {
	return t.containerOp(ctx, OpResume, t.c.Resume)
}

// Update changes the container's resource limits once the sandbox's hooks
// have admitted the change (container.update): a denial refuses it and the
// container keeps its limits. Only an update the container's state allows
// is put to the hooks, and they are asked without t.mu held (a slow module
// must not hold up the task's other operations); the state is checked
// again before the limits change.
func (t *Task) Update(ctx context.Context, res *specs.LinuxResources) error {
	if err := t.checkContainer(OpUpdate); err != nil {
		return err
	}
	if err := t.sb.admitUpdate(ctx, t.hooks, res); err != nil {
		return err
	}
	return t.containerOp(ctx, OpUpdate, func(ctx context.Context) error { return t.c.Update(ctx, res) })
}

// checkContainer says why the container cannot take op now, if it cannot.
func (t *Task) checkContainer(op Op) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.init.state.Next(op); err != nil {
		return fmt.Errorf("container %s: %w", t.ID, err)
	}
	return nil
}

func (t *Task) containerOp(ctx context.Context, op Op, fn func(context.Context) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.init.state.Next(op); err != nil {
		return fmt.Errorf("container %s: %w", t.ID, err)
	}
	if err := fn(ctx); err != nil {
		return err
	}
	return t.advanceLocked(t.init, op)
}

// Stats returns the container's metrics message.
func (t *Task) Stats(ctx context.Context) (any, error) {
	return t.c.Stats(ctx)
}

// Pids lists the container's processes and which exec each belongs to.
func (t *Task) Pids(ctx context.Context) (pids []int, execs map[int]string, err error) {
	pids, err = t.c.Pids(ctx)
	if err != nil {
		return nil, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	execs = make(map[int]string)
	for id, p := range t.execs {
		if pid := p.p.Pid(); pid != 0 {
			execs[pid] = id
		}
	}
	return pids, execs, nil
}

// ResizePty changes a process's terminal size.
func (t *Task) ResizePty(ctx context.Context, execID string, width, height uint32) error {
	return t.processOp(execID, OpResize, func(p handler.Process) error { return p.ResizePty(ctx, width, height) })
}

// CloseStdin closes a process's standard input.
func (t *Task) CloseStdin(ctx context.Context, execID string) error {
	return t.processOp(execID, OpCloseIO, func(p handler.Process) error { return p.CloseStdin(ctx) })
}

func (t *Task) processOp(execID string, op Op, fn func(handler.Process) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.get(execID)
	if err != nil {
		return err
	}
	if _, err := p.state.Next(op); err != nil {
		return err
	}
	return fn(p.p)
}

// Delete removes an exec, or with execID "" the whole container. The process
// must have exited or never started; a never-started init is killed first.
func (t *Task) Delete(ctx context.Context, execID string) (ProcessStatus, error) {
	t.mu.Lock()
	p, err := t.get(execID)
	if err != nil {
		t.mu.Unlock()
		return ProcessStatus{}, err
	}
	if _, err := p.state.Next(OpDelete); err != nil {
		t.mu.Unlock()
		return ProcessStatus{}, err
	}
	if execID != "" {
		_ = t.advanceLocked(p, OpDelete)
		delete(t.execs, execID)
		t.mu.Unlock()
		err := p.p.Close(ctx)
		return ProcessStatus{ExecID: execID, Pid: p.p.Pid(), State: Deleted, Exit: p.exit}, err
	}
	created := p.state == Created
	t.mu.Unlock()

	if created {
		// The init waits for Start; end it and let watch record the exit.
		if err := p.p.Signal(ctx, syscall.SIGKILL, false); err != nil {
			logging.L(ctx).Warn("killing never-started init", "id", t.ID, "error", err)
		}
		select {
		case <-p.exited:
		case <-time.After(killGrace):
			return ProcessStatus{}, fmt.Errorf("delete %s: init did not exit after SIGKILL: %w", t.ID, errdefs.ErrUnavailable)
		}
	}

	t.mu.Lock()
	if err := t.advanceLocked(p, OpDelete); err != nil {
		t.mu.Unlock()
		return ProcessStatus{}, err
	}
	var errs []error
	for id, x := range t.execs {
		errs = append(errs, x.p.Close(ctx))
		delete(t.execs, id)
	}
	errs = append(errs, p.p.Close(ctx), t.c.Delete(ctx))
	st := ProcessStatus{Pid: p.p.Pid(), State: Deleted, Exit: p.exit}
	t.mu.Unlock()
	// container.delete cannot stop a delete: its hooks hear of it once it
	// is done, without t.mu held, like every hook a task asks.
	t.sb.auditDelete(ctx, t.hooks, st.Exit)
	for _, err := range errs {
		if err != nil {
			return st, fmt.Errorf("delete %s: %w", t.ID, err)
		}
	}
	return st, nil
}
