package qemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
	"github.com/huskrt/husk/vmm"
)

// Name is the backend's name in configuration and in sandbox.vm.
const Name = "qemu"

// DefaultBinary is where Debian's qemu-system-x86 puts QEMU.
const DefaultBinary = "/usr/bin/qemu-system-x86_64"

// recordName is QEMU's pid and start time in the VM's directory, for
// Cleanup.
const recordName = "qemu.pid"

// Bounds of the shim's side.
const (
	// defaultStartTimeout bounds QEMU's start up to the guest's first
	// instruction when Start's context has no deadline.
	defaultStartTimeout = 60 * time.Second
	// defaultReplyTimeout is how long QEMU may take to answer a QMP
	// command once sent.
	defaultReplyTimeout = 10 * time.Second
	// defaultStopTimeout is how long Stop lets QEMU quit before it kills
	// it.
	defaultStopTimeout = 5 * time.Second
	// maxSerial is the longest disk serial the guest sees whole
	// (virtio-blk's serial field).
	maxSerial = 20
	// maxSlots bounds VMConfig.DiskSlots: one PCIe root port each.
	maxSlots = 16
	// maxNICs bounds VMConfig.NICs (agent.proto's bound of interfaces).
	maxNICs = 16
)

// Hypervisor is the qemu backend: one qemu-system-x86_64 process per VM,
// driven over QMP.
type Hypervisor struct {
	// Tests change these; zero means the default.
	startTimeout, replyTimeout, stopTimeout time.Duration
	// newChannel chooses a VM's agent channel (tests replace it).
	newChannel func() (channel, error)

	kvmOnce sync.Once
	kvmErr  error // why KVM cannot run a guest here; set once by kvmOnce
}

var _ virt.Hypervisor = (*Hypervisor)(nil)

// New returns the qemu backend.
func New() *Hypervisor { return &Hypervisor{newChannel: newChannel} }

// Name returns "qemu".
func (h *Hypervisor) Name() string { return Name }

// kvmUsable says why /dev/kvm cannot run a guest here, nil if it can:
// the builtin VMM's probe runs a few instructions in a VM of its own.
func (h *Hypervisor) kvmUsable(ctx context.Context) error {
	h.kvmOnce.Do(func() {
		// Once for the shim's life: not cut short by the first caller's
		// context (the probe has a deadline of its own).
		_, h.kvmErr = vmm.ProbeSpeed(context.WithoutCancel(ctx))
	})
	return h.kvmErr
}

// accel resolves the configured accelerator.
func (h *Hypervisor) accel(ctx context.Context, want string) (string, error) {
	switch want {
	case AccelTCG:
		return AccelTCG, nil
	case AccelKVM:
		if err := h.kvmUsable(ctx); err != nil {
			return "", fmt.Errorf("accel kvm: %w", err)
		}
		return AccelKVM, nil
	case AccelAuto, "":
		if h.kvmUsable(ctx) == nil {
			return AccelKVM, nil
		}
		return AccelTCG, nil
	}
	return "", fmt.Errorf("%w: accel %q (want auto, kvm or tcg)", errdefs.ErrInvalidArgument, want)
}

// Probe says whether this host can run the qemu backend as configured:
// the binary, the accelerator it would use and the agent channel. The
// note says what was found, also when err says what is missing.
func (h *Hypervisor) Probe(ctx context.Context, cfg virt.QEMUConfig) (note string, err error) {
	bin := orDefaultString(cfg.Binary, DefaultBinary)
	if err := unix.Access(bin, unix.X_OK); err != nil {
		return "", fmt.Errorf("%s: %w", bin, err)
	}
	accel, err := h.accel(ctx, cfg.Accel)
	if err != nil {
		return bin, err
	}
	note = fmt.Sprintf("%s, accel %s", bin, accel)
	ch, err := h.newChannel()
	if err != nil {
		return note, err
	}
	note += ", agent over " + ch.kind()
	ch.close()
	return note, nil
}

// checkConfig validates what Start needs of cfg.
func checkConfig(cfg *virt.VMConfig) error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("qemu: %w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(f, a...))
	}
	switch {
	case cfg.ID == "":
		return bad("a VM needs an id")
	case !filepath.IsAbs(cfg.Dir):
		return bad("VM directory %q is not absolute", cfg.Dir)
	case cfg.Kernel == "" || cfg.Initrd == "":
		return bad("a VM needs a kernel and an initrd")
	case cfg.VCPUs < 1 || cfg.VCPUs > 255:
		return bad("%d vCPUs", cfg.VCPUs)
	case cfg.MemoryMiB < 64:
		return bad("%d MiB of memory", cfg.MemoryMiB)
	case cfg.DiskSlots < 0 || cfg.DiskSlots > maxSlots:
		return bad("%d disk slots (want 0 to %d)", cfg.DiskSlots, maxSlots)
	case cfg.QEMU.Binary != "" && !filepath.IsAbs(cfg.QEMU.Binary):
		return bad("QEMU binary %q is not absolute", cfg.QEMU.Binary)
	case len(cfg.NICs) > maxNICs:
		return bad("%d NICs (want at most %d)", len(cfg.NICs), maxNICs)
	}
	for _, n := range cfg.NICs {
		if n.Tap == nil || len(n.MAC) != 6 || n.MAC[0]&1 != 0 || n.MTU < 68 || n.MTU > 65535 {
			return bad("NIC %q: want a tap, a unicast MAC (got %v) and an MTU of 68 to 65535 (got %d)", n.ID, n.MAC, n.MTU)
		}
	}
	return nil
}

// Start runs QEMU for cfg and returns once the guest runs: QEMU starts
// paused, joins cfg.Cgroup, is recorded in cfg.Dir, and QMP's cont starts
// the guest. On error nothing is left: QEMU is killed and reaped and its
// files removed.
func (h *Hypervisor) Start(ctx context.Context, cfg *virt.VMConfig) (virt.VM, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	rec := filepath.Join(cfg.Dir, recordName)
	if r, err := vmproc.Read(rec); err == nil && r.Running() {
		return nil, fmt.Errorf("qemu: %w: QEMU process %d runs for %s", errdefs.ErrAlreadyExists, r.Pid, cfg.Dir)
	}
	if err := vmproc.Remove(rec); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, orDefault(h.startTimeout, defaultStartTimeout))
		defer cancel()
	}
	accel, err := h.accel(ctx, cfg.QEMU.Accel)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	cred, err := credential(cfg.QEMU.User)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	ch, err := h.newChannel()
	if err != nil {
		return nil, fmt.Errorf("qemu: starting VM %s: %w", cfg.ID, err)
	}
	v, err := h.spawn(ctx, cfg, accel, cred, ch)
	if err != nil {
		return nil, fmt.Errorf("qemu: starting VM %s: %w", cfg.ID, err)
	}
	return v, nil
}

// spawn starts QEMU as cred (nil: the shim's user) with ch as its agent
// channel (which it then owns).
func (h *Hypervisor) spawn(ctx context.Context, cfg *virt.VMConfig, accel string, cred *syscall.Credential, ch channel) (_ *vm, err error) {
	parentEnd, childEnd, err := socketpair()
	if err != nil {
		ch.close()
		return nil, err
	}
	console := cfg.Console
	if console == nil {
		console = io.Discard
	}
	log := logging.L(ctx).With("vm", cfg.ID)
	v := &vm{
		id: cfg.ID, dir: cfg.Dir, memoryMiB: cfg.MemoryMiB, accel: accel,
		ch:           ch,
		replyTimeout: orDefault(h.replyTimeout, defaultReplyTimeout),
		stopTimeout:  orDefault(h.stopTimeout, defaultStopTimeout),
		stderr:       &vmproc.Tail{Log: log},
		slots:        make([]slot, cfg.DiskSlots),
		deleted:      map[string]chan struct{}{},
		done:         make(chan struct{}),
	}
	_, chFiles := ch.devices(qmpFD + 1)
	var env []string
	if p := os.Getenv("LD_LIBRARY_PATH"); p != "" {
		env = append(env, "LD_LIBRARY_PATH="+p) // a QEMU not installed in the loader's paths
	}
	cmd := &exec.Cmd{
		Path:       orDefaultString(cfg.QEMU.Binary, DefaultBinary),
		Args:       append([]string{"qemu-system-x86_64"}, args(cfg, accel, ch)...),
		Env:        env,
		Stdout:     struct{ io.Writer }{console}, // a pipe even for an *os.File
		Stderr:     v.stderr,
		ExtraFiles: append(append([]*os.File{childEnd}, chFiles...), nicFiles(cfg.NICs)...),
		WaitDelay:  time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			// New PID, IPC and UTS namespaces: QEMU sees no other
			// process (it cannot signal or trace one by pid) and no
			// host IPC. The network namespace stays the host's: vsock
			// may be per-namespace, and taps are passed in.
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
			Setpgid:    true,
			Credential: cred, // nil: the shim's user
		},
	}
	own := reaper.Spawn()
	err = cmd.Start()
	// QEMU's ends are QEMU's alone now: when QEMU exits, QMP and the
	// agent's channel see EOF.
	childEnd.Close()
	ch.started()
	if err != nil {
		own(0)
		parentEnd.Close()
		ch.close()
		return nil, fmt.Errorf("starting QEMU: %w", err)
	}
	own(cmd.Process.Pid)
	v.cmd, v.started = cmd, time.Now()
	// The record is written before QEMU can be reaped (wait removes it
	// once it is): a QEMU that exits at once must leave none.
	recErr := vmproc.Write(filepath.Join(cfg.Dir, recordName), cmd.Process.Pid)
	go v.wait()
	defer func() {
		if err != nil {
			parentEnd.Close()
			v.abort()
		}
	}()
	if recErr != nil {
		return nil, v.startErr(fmt.Errorf("recording QEMU's process: %w", recErr))
	}
	if cfg.Cgroup != "" {
		// Before the guest runs: its memory is charged to the cgroup of
		// the process that touches it.
		if err := cgroups.AddProc(cfg.Cgroup, cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	q, err := dialQMP(ctx, parentEnd, v.replyTimeout, v.event, v.kill)
	if err != nil {
		return nil, v.startErr(err)
	}
	v.setQMP(q)
	if _, err := q.execute(ctx, "cont", nil, nil); err != nil {
		return nil, v.startErr(err)
	}
	log.Debug("QEMU started", "pid", cmd.Process.Pid, "accel", accel, "channel", ch.kind(), "took", time.Since(v.started))
	return v, nil
}

// startErr is why Start failed: how QEMU ended, if it did.
func (v *vm) startErr(err error) error {
	select {
	case <-v.done:
		return fmt.Errorf("%w (%w)", v.err, err)
	case <-time.After(100 * time.Millisecond):
		return err
	}
}

// Cleanup ends what a dead shim left of the VM whose directory is dir: it
// kills the recorded QEMU process if its start time says it is still the
// same process, waits for it (bounded by ctx), and removes the record. A
// VM already gone is not an error.
func (h *Hypervisor) Cleanup(ctx context.Context, dir string) error {
	if err := vmproc.Cleanup(ctx, filepath.Join(dir, recordName)); err != nil {
		return fmt.Errorf("qemu: cleanup: %w", err)
	}
	return nil
}

// socketpair is QMP's channel: QEMU inherits one end (-chardev
// socket,fd=), so no socket path exists for anyone else to connect to.
func socketpair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("QMP socketpair: %w", err)
	}
	pf := os.NewFile(uintptr(fds[0]), "qmp")
	defer pf.Close()
	c, err := net.FileConn(pf)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("QMP socketpair: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "qmp"), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orDefaultString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
