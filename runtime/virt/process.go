package virt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
)

// Bounds of a process's waits.
const (
	waitPoll    = 10 * time.Second // each WaitProcess long-poll
	outputGrace = 2 * time.Second  // output still arriving after the exit
	closeGrace  = 5 * time.Second  // output still arriving at delete
)

// process is a process in the guest: the init of a container or an exec.
type process struct {
	sb      *sandbox
	c       *container
	execID  string
	streams *streams

	mu  sync.Mutex
	pid int // guarded by mu; the guest's pid

	done chan struct{}
	exit handler.Exit // set before done is closed
}

func newProcess(sb *sandbox, c *container, execID string, st *streams) *process {
	return &process{sb: sb, c: c, execID: execID, streams: st, done: make(chan struct{})}
}

func (p *process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *process) setPid(pid uint32) {
	p.mu.Lock()
	p.pid = int(pid)
	p.mu.Unlock()
}

func (p *process) Done() <-chan struct{} { return p.done }
func (p *process) Exit() handler.Exit    { return p.exit }

// Start starts the process in the guest.
func (p *process) Start(ctx context.Context) error {
	var pid uint32
	var err error
	if p.execID == "" {
		pid, err = p.sb.cl.StartContainer(ctx, p.c.id)
	} else {
		pid, err = p.sb.cl.StartProcess(ctx, p.c.id, p.execID)
	}
	if err != nil {
		return p.sb.callErr(err)
	}
	p.setPid(pid)
	if p.execID != "" {
		go p.wait()
	}
	return nil
}

// wait follows the process until it exits, or the VM goes: then it ends
// with status 255 and the VM's end in the log.
func (p *process) wait() {
	ctx := p.sb.ctx
	e := handler.Exit{Pid: p.Pid(), Status: 255}
	for {
		r, err := p.sb.cl.WaitProcess(ctx, p.c.id, p.execID, waitPoll)
		if err == nil && r.Exited {
			e = handler.Exit{Pid: int(r.Pid), Status: int(r.ExitStatus), At: r.ExitedAt}
			break
		}
		if err == nil {
			continue
		}
		// A VM gone, an agent that lost the process or answers nonsense:
		// the process is lost, and says why.
		if dead := p.sb.deadErr(); dead != nil || ctx.Err() != nil || errors.Is(err, client.ErrBroken) || errors.Is(err, client.ErrClosed) ||
			errors.Is(err, client.ErrBadReply) || errdefs.IsNotFound(err) {
			if dead == nil {
				dead = err
			}
			logging.L(ctx).Error("process lost", "container", p.c.id, "exec", p.execID, "error", dead)
			break
		}
		logging.L(ctx).Warn("waiting for a process in the VM", "container", p.c.id, "exec", p.execID, "error", err)
		time.Sleep(100 * time.Millisecond)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if p.execID == "" {
		if e.Status == 128+int(syscall.SIGKILL) {
			p.sb.flushOOM() // an OOM kill is reported before the exit
		}
		p.c.initExited()
	}
	if p.streams != nil && !p.streams.wait(outputGrace) {
		logging.L(ctx).Debug("exit reported before the output ended", "container", p.c.id, "exec", p.execID)
	}
	p.exit = e
	close(p.done)
}

func (p *process) Signal(ctx context.Context, sig syscall.Signal, all bool) error {
	return p.sb.callErr(p.sb.cl.SignalProcess(ctx, p.c.id, p.execID, uint32(sig), all))
}

func (p *process) ResizePty(ctx context.Context, width, height uint32) error {
	return p.sb.callErr(p.sb.cl.ResizePty(ctx, p.c.id, p.execID, width, height))
}

func (p *process) CloseStdin(ctx context.Context) error {
	return p.sb.callErr(p.sb.cl.CloseStdin(ctx, p.c.id, p.execID))
}

// Close waits (bounded) for the output and releases the streams; an exec
// is forgotten by the agent.
func (p *process) Close(ctx context.Context) error {
	if p.streams != nil {
		p.streams.wait(closeGrace)
		p.streams.close()
	}
	if p.execID != "" && p.sb.deadErr() == nil {
		err := p.sb.cl.DeleteProcess(ctx, p.c.id, p.execID)
		if errdefs.IsFailedPrecondition(err) {
			// The agent still runs it: a start whose call's deadline
			// passed on the host went ahead in the guest. The process
			// the host gave up on ends here rather than with the VM.
			err = p.end(ctx)
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("exec %s of %s: %w", p.execID, p.c.id, err)
		}
	}
	return nil
}

// end kills an exec the agent still runs, waits for its exit (bounded by
// closeGrace) and has the agent forget it.
func (p *process) end(ctx context.Context) error {
	if err := p.sb.cl.SignalProcess(ctx, p.c.id, p.execID, uint32(syscall.SIGKILL), false); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, closeGrace)
	defer cancel()
	for {
		r, err := p.sb.cl.WaitProcess(ctx, p.c.id, p.execID, time.Second)
		if err != nil {
			return err
		}
		if r.Exited {
			break
		}
	}
	return p.sb.cl.DeleteProcess(ctx, p.c.id, p.execID)
}

// callErr says, for a failed call, that the VM is gone if it is.
func (s *sandbox) callErr(err error) error {
	if err == nil {
		return nil
	}
	if dead := s.deadErr(); dead != nil {
		return fmt.Errorf("%w (%v): %w", dead, err, errdefs.ErrUnavailable)
	}
	return err
}
