package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/stdio"
)

// outputGrace bounds how long deleting a process waits for its output to
// drain after it exited (a background child may hold the pipe open).
const outputGrace = 5 * time.Second

// exitOutputGrace bounds how long a process's exit waits for its output to
// be copied out and read before it is reported.
const exitOutputGrace = 2 * time.Second

// process is an init or exec process of a container.
type process struct {
	c      *container
	execID string
	lp     *libcontainer.Process
	paths  stdio.Paths
	tty    bool

	mu      sync.Mutex
	pid     int       // guarded by mu
	io      *stdio.IO // guarded by mu
	console *os.File  // pty master; guarded by mu

	done chan struct{}
	exit handler.Exit // set before done is closed
}

func newProc(c *container, execID string, lp *libcontainer.Process, s handler.Stdio) *process {
	return &process{
		c:      c,
		execID: execID,
		lp:     lp,
		paths:  stdio.Paths{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr},
		tty:    s.Terminal,
		done:   make(chan struct{}),
	}
}

func (p *process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *process) Done() <-chan struct{} { return p.done }
func (p *process) Exit() handler.Exit    { return p.exit }

// launch wires up the process's stdio, runs start (libcontainer's Start for
// an init, Run for an exec) and begins waiting for it.
func (p *process) launch(ctx context.Context, start func(*libcontainer.Process) error) (retErr error) {
	var sock *consoleSocket
	if p.tty {
		var err error
		if sock, err = newConsoleSocket(); err != nil {
			return err
		}
		defer sock.Close()
		p.lp.ConsoleSocket = sock.child
	} else {
		x, err := stdio.NewPipes(ctx, p.paths)
		if err != nil {
			return err
		}
		defer func() {
			x.CloseChildEnds()
			if retErr != nil {
				_ = x.Close(0)
			}
		}()
		if err := chownStdio(p.c.spec, uint32(p.lp.UID), uint32(p.lp.GID), x.Stdin, x.Stdout, x.Stderr); err != nil {
			return err
		}
		p.lp.Stdin, p.lp.Stdout, p.lp.Stderr = nil, nil, nil
		// Typed nil *os.File values must not reach exec.Cmd.
		if x.Stdin != nil {
			p.lp.Stdin = x.Stdin
		}
		if x.Stdout != nil {
			p.lp.Stdout = x.Stdout
		}
		if x.Stderr != nil {
			p.lp.Stderr = x.Stderr
		}
		p.io = x
	}
	// The shim waits for this process itself (wait, below): keep the
	// orphan reaper's hands off it from its fork on.
	own := reaper.Spawn()
	if err := start(p.lp); err != nil {
		own(0)
		return startError(err)
	}
	pid, err := p.lp.Pid()
	if err != nil {
		own(0)
		return fmt.Errorf("pid of started process: %w", err)
	}
	own(pid)
	if sock != nil {
		// On failure the process is killed and nobody here waits for it:
		// the reaper may.
		master, err := sock.receive()
		if err != nil {
			_ = p.lp.Signal(syscall.SIGKILL)
			reaper.Release(pid)
			return err
		}
		x, err := stdio.NewConsole(ctx, master, p.paths)
		if err != nil {
			_ = p.lp.Signal(syscall.SIGKILL)
			reaper.Release(pid)
			return err
		}
		p.mu.Lock()
		p.io, p.console = x, master
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
	go p.wait(ctx)
	return nil
}

// startError wraps a libcontainer start failure. Its message (the init's own
// report, such as a missing executable) is what the user sees through ctr.
func startError(err error) error {
	return fmt.Errorf("starting container process: %w", err)
}

func (p *process) wait(ctx context.Context) {
	awaitExit(p.Pid()) // without holding a thread (exitwait.go)
	st, err := p.lp.Wait()
	e := handler.Exit{Pid: p.Pid(), At: time.Now()}
	reaper.Release(e.Pid)
	switch {
	case st != nil:
		ws, _ := st.Sys().(syscall.WaitStatus)
		e.Status = handler.ExitStatus(ws)
	default:
		logging.L(ctx).Error("waiting for process", "exec", p.execID, "pid", e.Pid, "error", err)
		e.Status = 255
	}
	if p.execID == "" {
		p.c.killRest(ctx)
	}
	// Once told of the exit, a client may stop reading (ctr does): let it
	// have the output first.
	p.mu.Lock()
	x := p.io
	p.mu.Unlock()
	if x != nil {
		if err := x.WaitOutput(exitOutputGrace); err != nil {
			logging.L(ctx).Debug("exit reported before the output ended", "exec", p.execID, "pid", e.Pid, "error", err)
		}
	}
	p.exit = e
	close(p.done)
}

func (p *process) Start(ctx context.Context) error {
	if p.execID == "" {
		// The init was created by Container.Create and waits on its exec
		// FIFO; opening it lets the user's program run.
		if err := p.c.lc.Exec(); err != nil {
			return fmt.Errorf("starting container %s: %w", p.c.id, err)
		}
		return nil
	}
	return p.launch(ctx, p.c.lc.Run)
}

func (p *process) Signal(ctx context.Context, sig syscall.Signal, all bool) error {
	if all {
		return p.c.signalAll(sig)
	}
	if p.execID == "" {
		err := p.c.lc.Signal(sig)
		// ErrProcessDone: the init ended between libcontainer's check
		// that it runs and the signal (its exit not yet recorded).
		if errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("container %s: process already finished: %w", p.c.id, errdefs.ErrNotFound)
		}
		return err
	}
	if err := p.lp.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("exec %s: process already finished: %w", p.execID, errdefs.ErrNotFound)
		}
		return err
	}
	return nil
}

func (p *process) ResizePty(ctx context.Context, width, height uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.console == nil {
		return fmt.Errorf("process has no terminal: %w", errdefs.ErrFailedPrecondition)
	}
	return resize(p.console, width, height)
}

func (p *process) CloseStdin(ctx context.Context) error {
	p.mu.Lock()
	x := p.io
	p.mu.Unlock()
	if x == nil {
		return nil
	}
	return x.CloseStdin()
}

func (p *process) Close(ctx context.Context) error {
	p.mu.Lock()
	x := p.io
	p.io, p.console = nil, nil
	p.mu.Unlock()
	if x == nil {
		return nil
	}
	if err := x.Close(outputGrace); err != nil {
		logging.L(ctx).Warn("closing process stdio", "exec", p.execID, "error", err)
	}
	return nil
}
