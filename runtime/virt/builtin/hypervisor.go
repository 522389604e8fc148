//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
)

// Name is the backend's name in configuration and in sandbox.vm.
const Name = "builtin"

// Default bounds of the parent's side.
const (
	// defaultStartTimeout bounds building and confining the VM when
	// Start's context has no deadline.
	defaultStartTimeout = 60 * time.Second
	// defaultReplyTimeout is how long the VMM may take to answer a
	// request once sent, whether or not the caller still waits.
	defaultReplyTimeout = 5 * time.Second
	// defaultStopTimeout is how long Stop lets the VMM stop the VM and
	// exit before it kills it.
	defaultStopTimeout = 5 * time.Second
	// closedGrace is how long a VMM that closed its control channel has
	// to exit before it is killed.
	closedGrace = 2 * time.Second
)

// Hypervisor is the builtin backend: husk's VMM (vmm/), run as a
// confined process of its own for each VM: the husk-vmm binary next to
// the shim, or else the shim binary itself.
type Hypervisor struct {
	// binary is the VMM process's program (VMMBinary next to this one,
	// found by New), "" for this program itself.
	binary string
	// Tests change these; zero means the default.
	env                                     []string
	startTimeout, replyTimeout, stopTimeout time.Duration
}

var _ virt.Hypervisor = (*Hypervisor)(nil)

// VMMBinary is the program the VMM processes run when it is installed
// next to the shim (make install puts it there): cmd/husk-vmm, which
// links only this package's VMM-process side and vmm/. Without it Start
// re-executes the shim binary, which holds the same code but brings
// everything else the shim links into each VM's process (its text, its
// package initialisation, its heap: several MiB more beside each guest).
const VMMBinary = "husk-vmm"

// New returns the builtin backend. It looks for VMMBinary in the
// directory of the running program, once.
func New() *Hypervisor { return &Hypervisor{binary: findVMMBinary()} }

// findVMMBinary is VMMBinary's path next to the running program if it is
// an executable regular file there, else "".
func findVMMBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return findVMMBinaryIn(filepath.Dir(exe))
}

// findVMMBinaryIn is VMMBinary's path in dir if it is an executable
// regular file there, else "".
func findVMMBinaryIn(dir string) string {
	p := filepath.Join(dir, VMMBinary)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return ""
	}
	return p
}

// program is the VMM process's executable: VMMBinary, or this program
// (/proc/self/exe: the very file this process runs, whatever its path now
// names).
func (h *Hypervisor) program() string {
	if h.binary != "" {
		return h.binary
	}
	return "/proc/self/exe"
}

// Name returns "builtin".
func (h *Hypervisor) Name() string { return Name }

// childEnv is the VMM process's whole environment. The Go runtime would
// otherwise keep its cgroup's cpu.max open and re-read it every second
// (container-aware GOMAXPROCS): a descriptor and a file open the confined
// process has no use for. disablethp: the Go heap is not backed by
// transparent huge pages (where they are always on, as in Debian's
// kernels, the VMM's first touch of its heap made the kernel give it a
// whole 2 MiB page: 2 MiB more beside each guest, or not, by the heap's
// alignment). Guest memory is not the Go heap: it keeps them.
var childEnv = []string{"GODEBUG=containermaxprocs=0,updatemaxprocs=0,disablethp=1"}

// Start runs the VM's VMM process (VMMBinary, or the shim binary
// re-executed: see Hypervisor) and waits until that process has built
// the VM, confined itself and started the guest. The process is in new mount and PID namespaces (it needs to see
// no other process, and its mounts are its own to pivot away) but the
// host's network namespace: it opens no network device itself (a VM's
// taps are in the pod's namespace; the handler opens them and they go
// with the config). On error
// nothing is left: the process is killed and reaped and its files
// removed.
func (h *Hypervisor) Start(ctx context.Context, cfg *virt.VMConfig) (virt.VM, error) {
	ccfg, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	ccfg.Debug = logging.L(ctx).Enabled(ctx, slog.LevelDebug)
	if r, err := vmproc.Read(recordPath(cfg.Dir)); err == nil {
		if r.Running() {
			return nil, fmt.Errorf("builtin: %w: VMM process %d runs for %s", errdefs.ErrAlreadyExists, r.Pid, cfg.Dir)
		}
	}
	if err := removeState(cfg.Dir); err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, orDefault(h.startTimeout, defaultStartTimeout))
		defer cancel()
	}
	v, err := h.spawn(ctx, cfg, ccfg)
	if err != nil {
		return nil, fmt.Errorf("builtin: starting VM %s: %w", cfg.ID, err)
	}
	return v, nil
}

// spawn starts the process and hands it its VM.
func (h *Hypervisor) spawn(ctx context.Context, cfg *virt.VMConfig, ccfg *childConfig) (_ *vm, err error) {
	parentEnd, childEnd, err := socketpair()
	if err != nil {
		return nil, err
	}
	defer childEnd.Close()
	console := cfg.Console
	if console == nil {
		console = io.Discard
	}
	log := logging.L(ctx).With("vm", cfg.ID)
	log.Debug("starting the VMM process", "program", h.program())
	v := &vm{
		id: cfg.ID, dir: cfg.Dir, memoryMiB: cfg.MemoryMiB, slots: cfg.DiskSlots,
		replyTimeout: orDefault(h.replyTimeout, defaultReplyTimeout),
		stopTimeout:  orDefault(h.stopTimeout, defaultStopTimeout),
		stderr:       &tail{Log: log},
		done:         make(chan struct{}),
	}
	env := childEnv
	if h.env != nil {
		env = append(env[:len(env):len(env)], h.env...)
	}
	cmd := &exec.Cmd{
		Path:       h.program(),
		Args:       []string{"husk-vmm", ProcessArg, cfg.ID},
		Env:        env,
		Stdout:     struct{ io.Writer }{console}, // a pipe even for an *os.File
		Stderr:     v.stderr,
		ExtraFiles: []*os.File{childEnd},
		WaitDelay:  time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID,
			Setpgid:    true,
		},
	}
	own := reaper.Spawn()
	if err := cmd.Start(); err != nil {
		own(0)
		parentEnd.Close()
		return nil, fmt.Errorf("starting the VMM process: %w", err)
	}
	own(cmd.Process.Pid)
	v.cmd, v.started = cmd, time.Now()
	v.ctl = newControl(parentEnd, v.channelBroken)
	// The record is written before the process can be reaped (wait
	// removes it once it is): a VMM that exits at once must leave none.
	recErr := vmproc.Write(recordPath(cfg.Dir), cmd.Process.Pid)
	go v.wait()
	defer func() {
		if err != nil {
			v.abort()
		}
	}()
	if recErr != nil {
		return nil, v.startErr(fmt.Errorf("recording the VMM process: %w", recErr))
	}
	if cfg.Cgroup != "" {
		// Before the VM exists: guest memory is charged to the cgroup of
		// the process that first touches it.
		if err := cgroups.AddProc(cfg.Cgroup, cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	// The taps go with the config: the VMM process cannot open them (they
	// are in the pod's network namespace, and it is confined).
	var taps []int
	for _, n := range cfg.NICs {
		taps = append(taps, int(n.Tap.Fd()))
	}
	rep, err := v.ctl.call(ctx, &request{Op: opConfig, Config: ccfg}, taps, time.Until(deadline(ctx)))
	if err == nil {
		err = replyErr(opConfig, rep)
	}
	if err != nil {
		return nil, v.startErr(err)
	}
	return v, nil
}

// startErr is why Start failed: the VMM's own error reply if it sent one,
// else how it ended, if it did.
func (v *vm) startErr(err error) error {
	var re *remoteError
	if errors.As(err, &re) {
		return err
	}
	select {
	case <-v.done:
		return fmt.Errorf("%w (%w)", v.err, err)
	case <-time.After(100 * time.Millisecond):
		return err
	}
}

// Cleanup ends what a dead shim left of the VM whose directory is dir: it
// kills the recorded VMM process if its start time says it is still the
// same process, waits for it (bounded by ctx), and removes the socket and
// the record. A VM already gone is not an error.
func (h *Hypervisor) Cleanup(ctx context.Context, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return cleanup(ctx, dir)
}

func socketpair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socketpair: %w", err)
	}
	pf := os.NewFile(uintptr(fds[0]), "control")
	defer pf.Close()
	c, err := net.FileConn(pf)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("control socketpair: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "control"), nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
