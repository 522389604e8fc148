package virt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/handler"
)

// Name is the handler's name in config and annotations.
const Name = vocab.Virt

// baseKernelParams are husk's own words of every guest's command line:
// the console is the serial port (the VM's log), a panic ends the VM at
// once, and a reboot is an end (the VMM does not restart).
var baseKernelParams = []string{"console=ttyS0", "reboot=k", "panic=-1", "quiet"}

// kernelParams is a guest's command line: husk's words, the VM's (the
// configuration's and the hooks'), and last the word that turns the
// agent's debug console on when console is (config reserves it: no other
// word can).
func kernelParams(vmParams []string, console bool) []string {
	ps := append(append([]string{}, baseKernelParams...), vmParams...)
	if console {
		ps = append(ps, api.DebugConsoleParam)
	}
	return ps
}

// Handler is the VirtContainer handler.
type Handler struct {
	hvs []Hypervisor // the backends of this build; [virt] hypervisor picks one
}

// New returns the handler, running VMs with the backend among hvs that the
// configuration names.
func New(hvs ...Hypervisor) *Handler { return &Handler{hvs: hvs} }

// Backends names the hypervisor backends of this build, in order.
func (h *Handler) Backends() []string {
	names := make([]string, len(h.hvs))
	for i, hv := range h.hvs {
		names[i] = hv.Name()
	}
	return names
}

// hypervisor returns the backend named name.
func (h *Handler) hypervisor(name string) (Hypervisor, error) {
	var names []string
	for _, hv := range h.hvs {
		if hv.Name() == name {
			return hv, nil
		}
		names = append(names, hv.Name())
	}
	return nil, fmt.Errorf("hypervisor %q is not available in this build (it has %s): %w", name, strings.Join(names, ", "), errdefs.ErrInvalidArgument)
}

// Name returns "virt".
func (*Handler) Name() string { return Name }

// vmDir is where a sandbox's VM keeps its sockets and state.
func vmDir(stateDir string) string { return filepath.Join(stateDir, Name) }

// NewSandbox starts the pod's VM: its shape from the configuration grown
// by the pod's sizing (sizingOf), asked of the hooks at sandbox.vm, then
// bounded by withinLimits; then waits for its agent and gives it the pod.
func (h *Handler) NewSandbox(ctx context.Context, req *handler.SandboxRequest) (handler.Sandbox, error) {
	cfg := req.Config.Virt
	hv, err := h.hypervisor(cfg.Hypervisor)
	if err != nil {
		return nil, err
	}
	img, err := loadImage(cfg.GuestImage)
	if err != nil {
		return nil, err
	}
	vm := handler.VM{
		Hypervisor:   hv.Name(),
		VCPUs:        cfg.VCPUs,
		MemoryMiB:    cfg.MemoryMiB,
		KernelParams: append([]string{}, cfg.KernelParams...),
		Devices: []handler.Device{
			{Type: "virtio-vsock", ID: "agent"},
			{Type: "virtio-blk", ID: "slots", Path: fmt.Sprintf("%d empty slots", cfg.DiskSlots)},
		},
	}
	pn, err := askNetwork(ctx, req)
	if err != nil {
		return nil, err
	}
	for i, e := range pn.endpoints {
		vm.Devices = append(vm.Devices, handler.Device{Type: "virtio-net", ID: e.name, Path: tapName(i, e.name)})
	}
	if err := vm.Check(); err != nil {
		return nil, err
	}
	// The pod's own size on top of the base, before the hooks see it.
	sizingOf(req.Resources).grow(&vm)
	if req.Policy != nil {
		if err := req.Policy.VM(ctx, &vm); err != nil {
			return nil, err
		}
	}
	if err := withinLimits(&vm, cfg, hostResources); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", req.ID, err)
	}
	boot, err := cfg.BootTimeout.Parse()
	if err != nil {
		return nil, fmt.Errorf("virt.boot_timeout: %w", err)
	}
	call, err := cfg.AgentTimeout.Parse()
	if err != nil {
		return nil, fmt.Errorf("virt.agent_timeout: %w", err)
	}
	dir := vmDir(req.StateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	nics, err := setupNICs(pn, req.StateDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", req.ID, err)
	}
	// The VM's process has its own descriptors of the taps once started.
	defer nics.closeFiles()
	cg := vmCgroup(req)
	if err := createVMCgroup(req.StateDir, cg); err != nil {
		if nerr := nics.teardown(); nerr != nil {
			logging.L(ctx).Warn("removing the pod's taps", "error", nerr)
		}
		return nil, err
	}
	s, err := startSandbox(ctx, sandboxConfig{
		id:       req.ID,
		hostname: hostname(req),
		stateDir: req.StateDir,
		hv:       hv,
		vm: VMConfig{
			ID: req.ID, Dir: dir, Kernel: img.kernel, Initrd: img.initrd,
			KernelParams: kernelParams(vm.KernelParams, cfg.DebugConsole),
			VCPUs:        vm.VCPUs, MemoryMiB: vm.MemoryMiB,
			DiskSlots: cfg.DiskSlots, Cgroup: cg,
			QEMU:    QEMUConfig{Binary: cfg.QEMU.Binary, Accel: cfg.QEMU.Accel, User: cfg.QEMU.User},
			NICs:    nics.vmNICs(),
			Console: newConsoleLog(dir),
		},
		network: pn.agentNetwork(),
		netns:   pn.netns,
		nics:    nics,
		boot:    boot,
		call:    call,
		cache:   cfg.RootfsCache,
		console: cfg.DebugConsole,
	})
	if err != nil {
		if nerr := nics.teardown(); nerr != nil {
			logging.L(ctx).Warn("removing the pod's taps", "error", nerr)
		}
		if rerr := removeVMCgroup(req.StateDir); rerr != nil {
			logging.L(ctx).Warn("removing the VM's cgroup", "error", rerr)
		}
		return nil, err
	}
	return s, nil
}

// askNetwork reads the pod's network from its namespace (none without
// one) and asks sandbox.network; what the hooks removed is not passed on.
func askNetwork(ctx context.Context, req *handler.SandboxRequest) (*podNetwork, error) {
	path := podNetns(req.Spec)
	if path == "" {
		return &podNetwork{}, nil
	}
	pn, err := readNetwork(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", req.ID, err)
	}
	if req.Policy == nil {
		return pn, nil
	}
	view := pn.view()
	if err := req.Policy.Network(ctx, &view); err != nil {
		return nil, err
	}
	return pn.keep(view), nil
}

// hostname is the guest's: the sandbox container's, else the pod's id.
func hostname(req *handler.SandboxRequest) string {
	if req.Spec != nil && req.Spec.Hostname != "" {
		return req.Spec.Hostname
	}
	return req.ID
}

// Cleanup removes what a dead shim left of a container on the host: the
// rootfs mount it made to build the container's image. The guest's side
// goes with the VM (CleanupSandbox).
func (*Handler) Cleanup(ctx context.Context, stateDir, id, bundle string) (int, error) {
	return 0, unmountRootfs(filepath.Join(bundle, "rootfs"))
}

// CleanupSandbox ends the VM a dead shim left and removes its directory.
// Every backend is asked: the configuration may have changed since the VM
// started, and each finds only its own record in the directory.
func (h *Handler) CleanupSandbox(ctx context.Context, stateDir string) error {
	dir := vmDir(stateDir)
	for _, hv := range h.hvs {
		if err := hv.Cleanup(ctx, dir); err != nil {
			return err
		}
	}
	if err := cleanupNetwork(stateDir); err != nil {
		return err
	}
	if err := removeVMCgroup(stateDir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
