package virt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
)

// Bounds of the sandbox's own calls.
const (
	// closeTimeout bounds the agent's goodbye and the VM's stop.
	closeTimeout = 10 * time.Second
	// oomPoll is the long-poll of the OOM watch.
	oomPoll = 2 * time.Second
)

type sandboxConfig struct {
	id, hostname string
	stateDir     string // the sandbox's (the VM's cgroup record)
	hv           Hypervisor
	vm           VMConfig
	boot         time.Duration
	// call bounds every call to the agent ([virt] agent_timeout;
	// long-polls get their poll on top).
	call    time.Duration
	cache   string
	network *api.Network // the guest's; nil: loopback only
	netns   string       // the pod's network namespace on the host; "": none
	nics    *podNICs     // the taps in the pod's namespace; nil: none
	console bool         // [virt] debug_console: serve DebugConsoleSocket
}

// sandbox is a pod's VM and its agent.
type sandbox struct {
	cfg    sandboxConfig
	vm     VM
	cl     *client.Client
	ctx    context.Context // the sandbox's life: its loops, its processes
	cancel context.CancelFunc

	mu     sync.Mutex
	ctrs   map[string]*container // guarded by mu
	closed bool                  // guarded by mu
	// dead is closed when the VM ended while the sandbox was open; why
	// says how.
	dead    chan struct{}
	why     error // set before dead is closed
	oomSync chan chan struct{}
	vols    podVolumes      // the host volumes copied into the VM
	ports   *podPortForward // nil: no port forwarding
	console *debugConsoles  // nil: no debug console
}

// startSandbox boots the VM and waits for its agent. On error nothing is
// left running.
func startSandbox(ctx context.Context, cfg sandboxConfig) (_ *sandbox, retErr error) {
	start := time.Now()
	vm, err := cfg.hv.Start(ctx, &cfg.vm)
	if err != nil {
		return nil, fmt.Errorf("starting the VM of %s: %w", cfg.id, err)
	}
	defer func() {
		if retErr != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
			defer cancel()
			_ = vm.Stop(sctx)
		}
	}()
	cl, check, err := connect(ctx, vm, cfg.boot, cfg.call)
	if err != nil {
		return nil, fmt.Errorf("the agent of %s's VM: %w", cfg.id, err)
	}
	defer func() {
		if retErr != nil {
			cl.Close()
		}
	}()
	if check.ProtocolVersion != api.ProtocolVersion {
		return nil, fmt.Errorf("the agent of %s's VM speaks protocol %d, this shim %d: %w", cfg.id, check.ProtocolVersion, api.ProtocolVersion, errdefs.ErrFailedPrecondition)
	}
	if err := cl.CreateSandboxNetwork(ctx, cfg.id, cfg.hostname, cfg.network); err != nil {
		return nil, fmt.Errorf("the agent of %s's VM: %w", cfg.id, err)
	}
	logging.L(ctx).Info("VM ready", "vmm_pid", vm.Pid(), "kernel", check.KernelRelease,
		"agent", check.AgentVersion, "boot", time.Since(start).Round(time.Millisecond))
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &sandbox{cfg: cfg, vm: vm, cl: cl, ctx: sctx, cancel: cancel,
		ctrs: map[string]*container{}, dead: make(chan struct{}), oomSync: make(chan chan struct{})}
	s.ports = forwardPorts(sctx, cfg.netns, vm)
	if cfg.console {
		// A pod whose console cannot be served runs without it.
		s.console, err = serveDebugConsole(sctx, cfg.vm.Dir, debugConsoleDialer(vm))
		if err != nil {
			logging.L(ctx).Warn("the debug console is not available for this pod", "error", err)
		} else {
			logging.L(ctx).Warn("debug console on ([virt] debug_console): huskctl debug-console opens a shell in the guest")
		}
	}
	go s.watchVM()
	go s.watchOOM()
	return s, nil
}

// connect dials the agent until it answers Check, within boot; the client
// bounds each later call by call.
func connect(ctx context.Context, vm VM, boot, call time.Duration) (*client.Client, client.CheckResult, error) {
	ctx, cancel := context.WithTimeout(ctx, boot)
	defer cancel()
	var last error
	for {
		select {
		case <-vm.Done():
			return nil, client.CheckResult{}, fmt.Errorf("the VM ended while booting: %v", vm.Err())
		default:
		}
		conn, err := vm.Dial(ctx, api.AgentPort)
		if err == nil {
			cl := client.New(conn, client.Options{CallTimeout: call})
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			check, err := cl.Check(cctx)
			ccancel()
			if err == nil {
				return cl, check, nil
			}
			cl.Close()
			last = err
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, client.CheckResult{}, fmt.Errorf("no answer within the boot timeout %v (last: %v): %w", boot, last, errdefs.ErrUnavailable)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watchVM turns a VM that ends under a live sandbox into the end of its
// containers.
func (s *sandbox) watchVM() {
	<-s.vm.Done()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	s.why = fmt.Errorf("the VM of sandbox %s ended: %v", s.cfg.id, s.vm.Err())
	logging.L(s.ctx).Error("VM ended under its containers", "error", s.why)
	close(s.dead)
	s.cancel()
}

// deadErr says why the VM is gone, or nil while it runs.
func (s *sandbox) deadErr() error {
	select {
	case <-s.dead:
		return s.why
	default:
		return nil
	}
}

// watchOOM hands the agent's OOM reports to their containers. A sync
// request (flushOOM) is answered after a poll that started after it.
func (s *sandbox) watchOOM() {
	var waiting []chan struct{}
	for s.ctx.Err() == nil {
		poll := oomPoll
		select {
		case c := <-s.oomSync:
			waiting = append(waiting, c)
			poll = time.Millisecond
		default:
		}
		ids, err := s.cl.WaitOOM(s.ctx, poll)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, client.ErrBroken) || errors.Is(err, client.ErrClosed) {
				break
			}
			logging.L(s.ctx).Warn("OOM watch", "error", err)
			time.Sleep(100 * time.Millisecond)
		}
		for _, id := range ids {
			s.mu.Lock()
			c := s.ctrs[id]
			s.mu.Unlock()
			if c != nil {
				c.oomKilled()
			}
		}
		for _, c := range waiting {
			close(c)
		}
		waiting = nil
	}
	for _, c := range waiting {
		close(c)
	}
}

// flushOOM returns once the OOM kills the agent had seen by now were
// handed out (bounded).
func (s *sandbox) flushOOM() {
	c := make(chan struct{})
	select {
	case s.oomSync <- c:
	case <-s.ctx.Done():
		return
	case <-time.After(oomPoll + time.Second):
		return
	}
	select {
	case <-c:
	case <-s.ctx.Done():
	case <-time.After(oomPoll + time.Second):
	}
}

// Create creates a container in the VM: its root filesystem as an EROFS
// disk attached to the VM, its stdio on streams, the container by the
// agent.
func (s *sandbox) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	if err := s.deadErr(); err != nil {
		return nil, fmt.Errorf("container %s: %w: %w", req.ID, err, errdefs.ErrUnavailable)
	}
	if req.PodSandbox {
		return newPauseContainer(s, req.ID), nil
	}
	c, err := createContainer(ctx, s, req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ctrs[req.ID] = c
	s.mu.Unlock()
	return c, nil
}

func (s *sandbox) forget(id string) {
	s.mu.Lock()
	delete(s.ctrs, id)
	s.mu.Unlock()
}

// Close says goodbye to the agent and stops the VM.
func (s *sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if s.deadErr() == nil {
		if err := s.cl.DestroySandbox(ctx, s.cfg.id); err != nil {
			logging.L(ctx).Warn("agent: destroying the sandbox", "error", err)
		}
	}
	s.cancel()
	s.cl.Close()
	s.console.Close()
	if err := s.ports.Close(); err != nil {
		logging.L(ctx).Warn("port-forward: closing", "error", err)
	}
	if err := s.vm.Stop(ctx); err != nil {
		return fmt.Errorf("stopping the VM of %s: %w", s.cfg.id, err)
	}
	if err := s.cfg.nics.teardown(); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.cfg.id, err)
	}
	return removeVMCgroup(s.cfg.stateDir)
}

// Measure reports the VM's counters for the shim's metrics.
func (s *sandbox) Measure(ctx context.Context) ([]handler.Measure, error) {
	st, err := s.vm.Stats(ctx)
	if err != nil {
		return nil, err
	}
	ms := []handler.Measure{
		{Name: "vm_memory_bytes", Help: "Guest memory of the sandbox's VM.", Value: float64(st.MemoryMiB << 20)},
		{Name: "vm_process_rss_bytes", Help: "Resident memory of the VM's process, touched guest memory included.", Value: float64(st.RSSBytes)},
		{Name: "vm_uptime_seconds", Help: "How long the sandbox's VM has run.", Value: st.Uptime.Seconds()},
	}
	for reason, n := range st.Exits {
		ms = append(ms, handler.Measure{Name: "vm_exits_total", Help: "vCPU exits to the VMM, by reason.", Counter: true,
			Labels: map[string]string{"reason": reason}, Value: float64(n)})
	}
	for _, d := range st.Disks {
		if d.Serial == "" {
			continue // an empty slot
		}
		l := map[string]string{"disk": d.Serial}
		ms = append(ms,
			handler.Measure{Name: "vm_disk_reads_total", Help: "Read requests of a VM disk.", Counter: true, Labels: l, Value: float64(d.Reads)},
			handler.Measure{Name: "vm_disk_writes_total", Help: "Write requests of a VM disk.", Counter: true, Labels: l, Value: float64(d.Writes)},
			handler.Measure{Name: "vm_disk_read_bytes_total", Help: "Bytes read from a VM disk.", Counter: true, Labels: l, Value: float64(d.BytesRead)},
			handler.Measure{Name: "vm_disk_written_bytes_total", Help: "Bytes written to a VM disk.", Counter: true, Labels: l, Value: float64(d.BytesWritten)})
	}
	return ms, nil
}
