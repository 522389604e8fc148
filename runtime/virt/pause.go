package virt

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/handler"
)

// pauseContainer is a pod's sandbox container under the CRI (the pause
// container). In a runc pod its process holds the pod's namespaces; in a
// VM pod the VM holds them, so it runs nothing in the guest: no disk, no
// agent call, no guest process. Its pid is the VMM process's, the host
// process that is the pod (Kata reports its hypervisor's too); a signal
// that ends pause (SIGINT, SIGTERM: status 0, as pause exits; SIGKILL:
// 137) ends it, others are ignored as pause ignores them; the VM's end
// ends it with 255, as it does every process of the pod.
type pauseContainer struct {
	sb   *sandbox
	id   string
	proc *pauseProcess
}

func newPauseContainer(sb *sandbox, id string) *pauseContainer {
	p := &pauseProcess{pid: sb.vm.Pid(), done: make(chan struct{}), dead: sb.dead}
	return &pauseContainer{sb: sb, id: id, proc: p}
}

func (c *pauseContainer) Init() handler.Process { return c.proc }

func (c *pauseContainer) Exec(context.Context, string, *specs.Process, handler.Stdio) (handler.Process, error) {
	return nil, fmt.Errorf("container %s is the pod's sandbox container, which runs no process in the VM to exec beside: %w", c.id, errdefs.ErrNotImplemented)
}

// Pause and Resume have nothing to stop: the pod's other containers are
// paused by their own requests.
func (c *pauseContainer) Pause(context.Context) error  { return nil }
func (c *pauseContainer) Resume(context.Context) error { return nil }

func (c *pauseContainer) Update(context.Context, *specs.LinuxResources) error {
	return fmt.Errorf("container %s is the pod's sandbox container: its VM's size is set when the pod starts: %w", c.id, errdefs.ErrNotImplemented)
}

// Stats are the VM's: the memory its VMM process holds, guest memory
// included; no CPU or pids accounting of a guest process, as there is none.
func (c *pauseContainer) Stats(ctx context.Context) (any, error) {
	st, err := c.sb.vm.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return &cgroup2stats.Metrics{Memory: &cgroup2stats.MemoryStat{Usage: st.RSSBytes, UsageLimit: st.MemoryMiB << 20}}, nil
}

// Pids lists nothing: the container has no process in the guest.
func (c *pauseContainer) Pids(context.Context) ([]int, error) { return nil, nil }

func (c *pauseContainer) OOM() <-chan struct{} { return nil }

func (c *pauseContainer) Delete(context.Context) error { return nil }

// pauseProcess is the pause container's init.
type pauseProcess struct {
	pid  int
	dead <-chan struct{} // the sandbox's: closed when the VM ended

	mu      sync.Mutex
	started bool
	exit    handler.Exit
	done    chan struct{}
	once    sync.Once
}

func (p *pauseProcess) Pid() int { return p.pid }

func (p *pauseProcess) Start(context.Context) error {
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	go func() {
		select {
		case <-p.dead:
			p.end(255)
		case <-p.done:
		}
	}()
	return nil
}

func (p *pauseProcess) end(status int) {
	p.once.Do(func() {
		p.mu.Lock()
		p.exit = handler.Exit{Pid: p.pid, Status: status, At: time.Now()}
		p.mu.Unlock()
		close(p.done)
	})
}

func (p *pauseProcess) Signal(_ context.Context, sig syscall.Signal, _ bool) error {
	select {
	case <-p.done:
		return fmt.Errorf("process already finished: %w", errdefs.ErrNotFound)
	default:
	}
	switch sig {
	case syscall.SIGINT, syscall.SIGTERM:
		p.end(0)
	case syscall.SIGKILL:
		p.end(128 + int(syscall.SIGKILL))
	}
	return nil
}

func (p *pauseProcess) ResizePty(context.Context, uint32, uint32) error { return nil }
func (p *pauseProcess) CloseStdin(context.Context) error                { return nil }
func (p *pauseProcess) Done() <-chan struct{}                           { return p.done }

func (p *pauseProcess) Exit() handler.Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func (p *pauseProcess) Close(context.Context) error { return nil }
