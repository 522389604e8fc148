package virt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent"
	"github.com/huskrt/husk/agent/api"
)

// fakeHypervisor "boots" a VM that is an in-process agent on the host,
// served on Unix sockets: what the handler does with a VM, without KVM.
// Disks are loop devices, which the agent finds by their serial through
// the table the fake keeps.
type fakeHypervisor struct {
	t       *testing.T
	mu      sync.Mutex
	started []*fakeVM
	bootErr error // Start fails with it
	// wrap, when set, puts a hostile agent in front of the real one: the
	// host reaches what wrap returns.
	wrap func(api.AgentService) api.AgentService
}

func (*fakeHypervisor) Name() string { return "builtin" }

func (h *fakeHypervisor) Start(ctx context.Context, cfg *VMConfig) (VM, error) {
	if h.bootErr != nil {
		return nil, h.bootErr
	}
	v := &fakeVM{cfg: *cfg, disks: map[string]string{}, done: make(chan struct{})}
	// The VM's process holds its taps as a real one does (the handler
	// closes its own descriptors after Start).
	v.cfg.NICs = slices.Clone(cfg.NICs)
	for i, n := range v.cfg.NICs {
		fd, err := unix.Dup(int(n.Tap.Fd()))
		if err != nil {
			return nil, err
		}
		v.cfg.NICs[i].Tap = os.NewFile(uintptr(fd), n.Tap.Name())
	}
	// The agent learns of its debug console from the command line, as
	// in a guest.
	console := agent.DebugConsoleEnabled(strings.Join(cfg.KernelParams, " "))
	svc, err := agent.New(agent.Options{StateDir: filepath.Join(cfg.Dir, "agent"), FindDisk: v.findDisk, DebugConsole: console})
	if err != nil {
		return nil, err
	}
	v.svc = svc
	// Socket paths must stay short: the test's directory is long.
	sockDir, err := os.MkdirTemp("", "husk-fakevm-")
	if err != nil {
		return nil, err
	}
	v.sockDir = sockDir
	agentName := "a"
	if h.wrap != nil {
		agentName = "real"
	}
	agentL, err := net.Listen("unix", filepath.Join(sockDir, agentName))
	if err != nil {
		return nil, err
	}
	streamL, err := net.Listen("unix", filepath.Join(sockDir, "s"))
	if err != nil {
		return nil, err
	}
	fwdL, err := net.Listen("unix", filepath.Join(sockDir, "f"))
	if err != nil {
		return nil, err
	}
	conL, err := net.Listen("unix", filepath.Join(sockDir, "c"))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.served = make(chan error, 1)
	ls := agent.Listeners{Agent: []net.Listener{agentL}, Streams: []net.Listener{streamL}, Forward: []net.Listener{fwdL}, Console: []net.Listener{conL}}
	go func() { v.served <- svc.ServeAll(sctx, ls) }()
	if h.wrap != nil {
		srv, err := ttrpc.NewServer()
		if err != nil {
			return nil, err
		}
		api.RegisterAgentService(srv, h.wrap(svc))
		l, err := net.Listen("unix", filepath.Join(sockDir, "a"))
		if err != nil {
			return nil, err
		}
		go func() { _ = srv.Serve(sctx, l) }()
		go func() { <-sctx.Done(); srv.Close() }()
	}
	h.mu.Lock()
	h.started = append(h.started, v)
	h.mu.Unlock()
	return v, nil
}

func (h *fakeHypervisor) Cleanup(ctx context.Context, dir string) error { return nil }

type fakeVM struct {
	cfg     VMConfig
	svc     *agent.Service
	sockDir string
	cancel  context.CancelFunc
	served  chan error

	mu    sync.Mutex
	disks map[string]string // serial → loop device
	conns []net.Conn

	done    chan struct{}
	endOnce sync.Once
	err     error
}

func (v *fakeVM) findDisk(serial string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if dev, ok := v.disks[serial]; ok {
		return dev, nil
	}
	return "", fmt.Errorf("no disk %q: %w", serial, errdefs.ErrNotFound)
}

func (v *fakeVM) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	name := map[uint32]string{api.AgentPort: "a", api.StreamPort: "s", api.ForwardPort: "f", api.DebugConsolePort: "c"}[port]
	if name == "" {
		return nil, fmt.Errorf("port %d: %w", port, errdefs.ErrNotFound)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(v.sockDir, name))
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.conns = append(v.conns, c)
	v.mu.Unlock()
	return c, nil
}

func (v *fakeVM) AttachDisk(ctx context.Context, path string, readOnly bool, serial string) error {
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("losetup %s: %v: %s", path, err, out)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.disks) >= v.cfg.DiskSlots {
		_ = exec.Command("losetup", "-d", strings.TrimSpace(string(out))).Run()
		return ErrNoFreeSlot
	}
	v.disks[serial] = strings.TrimSpace(string(out))
	return nil
}

func (v *fakeVM) DetachDisk(ctx context.Context, serial string) error {
	v.mu.Lock()
	dev, ok := v.disks[serial]
	delete(v.disks, serial)
	v.mu.Unlock()
	if !ok {
		return fmt.Errorf("disk %q: %w", serial, errdefs.ErrNotFound)
	}
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup -d %s: %v: %s", dev, err, out)
	}
	return nil
}

func (v *fakeVM) Stats(ctx context.Context) (VMStats, error) {
	return VMStats{MemoryMiB: v.cfg.MemoryMiB}, nil
}

// Pid is the test's: the process that runs the "VM".
func (v *fakeVM) Pid() int              { return os.Getpid() }
func (v *fakeVM) Done() <-chan struct{} { return v.done }
func (v *fakeVM) Err() error            { return v.err }

// end stops the agent and every connection to it, as a VM's end does.
func (v *fakeVM) end(err error) {
	v.endOnce.Do(func() {
		v.err = err
		// The agent goes silent first, then what ran in the VM ends with
		// it, and its disks are let go.
		v.cancel()
		<-v.served
		v.mu.Lock()
		for _, c := range v.conns {
			c.Close()
		}
		v.mu.Unlock()
		_, _ = v.svc.DestroySandbox(context.Background(), &api.DestroySandboxRequest{SandboxId: v.cfg.ID})
		v.mu.Lock()
		for serial, dev := range v.disks {
			_ = exec.Command("losetup", "-d", dev).Run()
			delete(v.disks, serial)
		}
		v.mu.Unlock()
		os.RemoveAll(v.sockDir)
		for _, n := range v.cfg.NICs {
			n.Tap.Close()
		}
		close(v.done)
	})
}

func (v *fakeVM) Stop(ctx context.Context) error {
	v.end(nil)
	return nil
}

var errCrashed = errors.New("the VMM crashed (test)")
