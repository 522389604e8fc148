package wasm

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/huskrt/husk/runtime/handler"
)

// A Wasm container's init is husk-wasm-runner, which ends at once with
// 128+n on a terminating signal n (WASI preview1 has no signals: the
// module never sees one). Its handler is a goroutine, and Go cannot
// preempt a module computing in compiled Wasm: when a garbage collection's
// stop-the-world comes while the module runs without calling the host, no
// goroutine runs until it does, and the signal waits with them (wazero's
// termination checks would give the collector its safe points, at ~32 ns
// per loop header, which makes Go-compiled modules many times slower). So
// the shim finishes what the runner would have done: a terminating signal
// the runner has not acted on within terminateGrace is followed by
// SIGKILL, and the exit is reported as the runner would have reported it,
// 128+n.

// terminateGrace is how long the runner has to end itself on a
// terminating signal before the shim kills it.
const terminateGrace = 2 * time.Second

// terminating are the signals that end the runner with 128+n (the
// runner's signals.go).
var terminating = map[syscall.Signal]bool{
	syscall.SIGHUP: true, syscall.SIGINT: true, syscall.SIGQUIT: true, syscall.SIGTERM: true,
	syscall.SIGUSR1: true, syscall.SIGUSR2: true, syscall.SIGALRM: true, syscall.SIGXCPU: true, syscall.SIGXFSZ: true,
}

// runnerContainer is a Wasm container: its init is a runnerInit.
type runnerContainer struct {
	handler.Container
	init *runnerInit
}

func newRunnerContainer(c handler.Container) *runnerContainer {
	return &runnerContainer{Container: c, init: &runnerInit{Process: c.Init(), grace: terminateGrace}}
}

func (c *runnerContainer) Init() handler.Process { return c.init }

// runnerInit is the runner as a container's init.
type runnerInit struct {
	handler.Process
	grace time.Duration

	mu     sync.Mutex
	killed syscall.Signal // the terminating signal the shim finished with SIGKILL; guarded by mu
}

// Signal sends sig; a terminating one the runner has not acted on within
// the grace is followed by SIGKILL.
func (p *runnerInit) Signal(ctx context.Context, sig syscall.Signal, all bool) error {
	if err := p.Process.Signal(ctx, sig, all); err != nil || !terminating[sig] {
		return err
	}
	go func() {
		select {
		case <-p.Done():
		case <-time.After(p.grace):
			p.mu.Lock()
			if p.killed == 0 {
				p.killed = sig
			}
			p.mu.Unlock()
			_ = p.Process.Signal(context.Background(), syscall.SIGKILL, false)
		}
	}()
	return nil
}

// Exit is the process's, with a SIGKILL the shim sent in the runner's
// place reported as the terminating signal it finished.
func (p *runnerInit) Exit() handler.Exit {
	e := p.Process.Exit()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed != 0 && e.Status == 128+int(syscall.SIGKILL) {
		e.Status = 128 + int(p.killed)
	}
	return e
}
