package virt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/linux"
	"github.com/huskrt/husk/test/devenv"
)

func init() { runtime.LockOSThread() } // as the shim's main (see there)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == linux.InitArg {
		linux.Init() // the in-process agent's containers
	}
	os.Exit(m.Run())
}

// env is a virt handler on a fake hypervisor, a busybox root filesystem
// and a fake guest image.
type env struct {
	t      *testing.T
	ctx    context.Context
	hv     *fakeHypervisor
	h      *Handler
	cfg    config.Config
	rootfs string // the busybox tree containerd would have prepared
	state  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the in-process agent runs containers and the fake VM's disks are loop devices: needs root")
	}
	for _, tool := range []string{"losetup", mkfsErofs} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make tools installs it)", tool)
		}
	}
	if b, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(b), "erofs") {
		t.Skip("the host kernel has no EROFS: the fake VM mounts the images on the host")
	}
	dir := t.TempDir()
	e := &env{t: t, ctx: context.Background(), hv: &fakeHypervisor{t: t}, rootfs: filepath.Join(dir, "busybox"), state: filepath.Join(dir, "state")}
	if err := devenv.BusyboxRootfs(e.rootfs); err != nil {
		t.Skipf("no busybox root filesystem: %v", err)
	}
	e.cfg = config.Default()
	e.cfg.Virt.GuestImage = fakeImage(t, filepath.Join(dir, "guest"))
	e.cfg.Virt.RootfsCache = filepath.Join(dir, "cache")
	e.cfg.Virt.BootTimeout = "10s"
	e.cfg.Virt.DiskSlots = 3
	e.h = New(e.hv)
	return e
}

// fakeImage writes a guest image whose files are not a kernel (the fake
// hypervisor does not boot one) with a manifest that matches them.
func fakeImage(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := guestimage.Manifest{Package: "fake", Version: "1", Release: "fake"}
	for _, f := range []struct {
		name string
		dst  *guestimage.File
	}{{guestimage.KernelFile, &m.Kernel}, {guestimage.InitrdFile, &m.Initrd}} {
		b := []byte("not a " + f.name)
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		*f.dst = guestimage.File{Name: f.name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, guestimage.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (e *env) sandbox() handler.Sandbox {
	e.t.Helper()
	sb, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "pod", Namespace: "ns", StateDir: e.state,
		Spec: &specs.Spec{Hostname: "pod-host"}, Config: &e.cfg})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sb.Close(context.Background()) })
	return sb
}

// fifos makes containerd's three FIFOs for a process and opens the
// client's ends of the outputs.
func (e *env) fifos(name string) (handler.Stdio, *os.File, *os.File) {
	e.t.Helper()
	dir := e.t.TempDir()
	s := handler.Stdio{Stdin: filepath.Join(dir, name+"-in"), Stdout: filepath.Join(dir, name+"-out"), Stderr: filepath.Join(dir, name+"-err")}
	for _, p := range []string{s.Stdin, s.Stdout, s.Stderr} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	open := func(p string) *os.File {
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { f.Close() })
		return f
	}
	return s, open(s.Stdout), open(s.Stderr)
}

// request is a create request for a busybox container running args.
func (e *env) request(id string, stdio handler.Stdio, args ...string) *handler.CreateRequest {
	s := specconv.Example()
	s.Root = &specs.Root{Path: "rootfs"}
	s.Process.Args = args
	s.Process.Terminal = false
	bundle := e.t.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return &handler.CreateRequest{ID: id, Namespace: "ns", Bundle: bundle, SandboxID: "pod", StateDir: e.state, Spec: s,
		Rootfs: []mount.Mount{{Type: "bind", Source: e.rootfs, Options: []string{"rbind", "ro"}}},
		Stdio:  stdio, Config: &e.cfg}
}

func readFifo(t *testing.T, f *os.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n, err := f.Read(buf)
		out = append(out, buf[:max(n, 0)]...)
		if errors.Is(err, io.EOF) && n == 0 && len(out) > 0 {
			return string(out)
		}
		if n <= 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return string(out)
}

func waitExit(t *testing.T, p handler.Process) handler.Exit {
	t.Helper()
	select {
	case <-p.Done():
		return p.Exit()
	case <-time.After(30 * time.Second):
		t.Fatal("the process did not exit")
	}
	return handler.Exit{}
}

// TestContainerInFakeVM: a container created through the handler runs in
// the "VM" from an EROFS image of its root filesystem attached as a disk,
// with its stdio over streams; a second container of the same image
// reuses the cached image; exec, pids, stats and kill work; deleting
// detaches the disks and closing the sandbox stops the VM.
func TestContainerInFakeVM(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox()
	if vm := e.hv.started[0]; vm.cfg.VCPUs != 1 || !strings.Contains(strings.Join(vm.cfg.KernelParams, " "), "console=ttyS0") {
		t.Fatalf("VM config %+v", vm.cfg)
	}

	stdio, out, errf := e.fifos("c1")
	req := e.request("c1", stdio, "sh", "-c", "echo hello; echo oops >&2; exit 4")
	c1, err := sb.Create(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Init().Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := readFifo(t, out); got != "hello\n" {
		t.Errorf("stdout %q", got)
	}
	if got := readFifo(t, errf); got != "oops\n" {
		t.Errorf("stderr %q", got)
	}
	if ex := waitExit(t, c1.Init()); ex.Status != 4 {
		t.Errorf("exit %+v, want 4", ex)
	}

	c2, err := sb.Create(e.ctx, e.request("c2", handler.Stdio{}, "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := filepath.Glob(filepath.Join(e.cfg.Virt.RootfsCache, "*.erofs")); len(imgs) != 1 {
		t.Errorf("cache holds %v, want one image for two containers of one image", imgs)
	}
	if err := c2.Init().Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	estdio, eout, _ := e.fifos("e1")
	estdio.Stdin = ""
	x, err := c2.Exec(e.ctx, "e1", &specs.Process{Args: []string{"sh", "-c", "echo from-exec; exit 2"}, Cwd: "/", Env: []string{"PATH=/bin"}}, estdio)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := readFifo(t, eout); got != "from-exec\n" {
		t.Errorf("exec stdout %q", got)
	}
	if ex := waitExit(t, x); ex.Status != 2 {
		t.Errorf("exec exit %+v", ex)
	}
	if err := x.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	if pids, err := c2.Pids(e.ctx); err != nil || len(pids) != 1 {
		t.Errorf("pids %v, %v", pids, err)
	}
	if st, err := c2.Stats(e.ctx); err != nil || st == nil {
		t.Errorf("stats %v, %v", st, err)
	}
	if err := c2.Init().Signal(e.ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, c2.Init()); ex.Status != 137 {
		t.Errorf("killed exit %+v", ex)
	}
	for _, c := range []handler.Container{c1, c2} {
		if err := c.Init().Close(e.ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if vm := e.hv.started[0]; len(vm.disks) != 0 {
		t.Errorf("deleted containers left disks %v", vm.disks)
	}
	if err := sb.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.hv.started[0].Done():
	default:
		t.Error("closing the sandbox left its VM running")
	}
}

// TestVMDeathEndsContainers: a VM that ends under its containers takes
// their processes to an exit (255) promptly, and later creates fail with
// the VM's end in the error.
func TestVMDeathEndsContainers(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox()
	c, err := sb.Create(e.ctx, e.request("c1", handler.Stdio{}, "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init().Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.hv.started[0].end(errCrashed)
	if ex := waitExit(t, c.Init()); ex.Status != 255 {
		t.Errorf("exit after the VM's end %+v, want 255", ex)
	}
	_, err = sb.Create(e.ctx, e.request("c2", handler.Stdio{}, "true"))
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), errCrashed.Error()) {
		t.Errorf("create after the VM's end: %v", err)
	}
	_ = c.Delete(e.ctx)
}

// TestRefused: what cannot reach a VM is refused with a clear error, and
// a VM that does not start leaves nothing.
func TestRefused(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox()
	bind := e.request("b", handler.Stdio{}, "true")
	bind.Spec.Mounts = append(bind.Spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/dev/null", Options: []string{"rbind"}})
	if _, err := sb.Create(e.ctx, bind); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "/dev/null") {
		t.Errorf("bind mount of a device: %v", err)
	}
	hooked := e.request("h", handler.Stdio{}, "true")
	hooked.Spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/usr/bin/true"}}}
	if _, err := sb.Create(e.ctx, hooked); !errdefs.IsInvalidArgument(err) {
		t.Errorf("OCI hook: %v", err)
	}
	if vm := e.hv.started[0]; len(vm.disks) != 0 {
		t.Errorf("refused creates left disks %v", vm.disks)
	}

	e.hv.bootErr = errors.New("no KVM here (test)")
	_, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "pod2", StateDir: filepath.Join(e.state, "2"), Config: &e.cfg})
	if err == nil || !strings.Contains(err.Error(), "no KVM here") {
		t.Errorf("VM that does not start: %v", err)
	}
	noImage := e.cfg
	noImage.Virt.GuestImage = filepath.Join(t.TempDir(), "none")
	_, err = e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "pod3", StateDir: filepath.Join(e.state, "3"), Config: &noImage})
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "make guest") {
		t.Errorf("no guest image: %v", err)
	}
}

// hostileAgent answers some calls badly; the rest go to the real agent.
type hostileAgent struct {
	api.AgentService
	hangCreate bool // CreateContainer never answers
	badWait    bool // WaitProcess answers an exit status no process has
	// lateStart starts an exec but answers StartProcess only at release,
	// as a guest too slow for the call's deadline does.
	lateStart bool
	release   chan struct{}
}

func (h *hostileAgent) StartProcess(ctx context.Context, r *api.StartProcessRequest) (*api.StartProcessResponse, error) {
	resp, err := h.AgentService.StartProcess(ctx, r)
	if h.lateStart {
		<-h.release
	}
	return resp, err
}

func (h *hostileAgent) CreateContainer(ctx context.Context, r *api.CreateContainerRequest) (*api.CreateContainerResponse, error) {
	if h.hangCreate {
		// A hostile agent ignores the deadline the call carries: only the
		// host's own deadline can end the wait.
		<-h.release
		return nil, errors.New("released")
	}
	return h.AgentService.CreateContainer(ctx, r)
}

func (h *hostileAgent) WaitProcess(ctx context.Context, r *api.WaitProcessRequest) (*api.WaitProcessResponse, error) {
	if h.badWait {
		return &api.WaitProcessResponse{Exited: true, ExitStatus: 999, Pid: 1}, nil
	}
	return h.AgentService.WaitProcess(ctx, r)
}

// TestHostileAgent (R10): an agent that never answers fails the create
// within the call's deadline, one that answers nonsense ends the process
// with an error instead of a made-up status; the handler serves on.
func TestHostileAgent(t *testing.T) {
	const callTimeout = 2 * time.Second
	t.Run("never answers", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.Virt.AgentTimeout = config.Duration(callTimeout.String())
		hostile := &hostileAgent{hangCreate: true, release: make(chan struct{})}
		defer close(hostile.release)
		e.hv.wrap = func(s api.AgentService) api.AgentService { hostile.AgentService = s; return hostile }
		sb := e.sandbox()
		start := time.Now()
		_, err := sb.Create(e.ctx, e.request("c1", handler.Stdio{}, "true"))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > callTimeout+5*time.Second {
			t.Fatalf("create against a silent agent: %v after %v", err, time.Since(start))
		}
		if vm := e.hv.started[0]; len(vm.disks) != 0 {
			t.Errorf("failed create left disks %v", vm.disks)
		}
	})
	t.Run("starts an exec after the deadline", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.Virt.AgentTimeout = config.Duration(callTimeout.String())
		hostile := &hostileAgent{lateStart: true, release: make(chan struct{})}
		defer close(hostile.release)
		e.hv.wrap = func(s api.AgentService) api.AgentService { hostile.AgentService = s; return hostile }
		sb := e.sandbox()
		c, err := sb.Create(e.ctx, e.request("c1", handler.Stdio{}, "sleep", "1000"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Init().Start(e.ctx); err != nil {
			t.Fatal(err)
		}
		x, err := c.Exec(e.ctx, "x1", &specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/", Env: []string{"PATH=/bin"}}, handler.Stdio{})
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Start(e.ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("start past the deadline: %v", err)
		}
		if pids, err := c.Pids(e.ctx); err != nil || len(pids) != 2 {
			t.Fatalf("pids %v, %v; want the init and the exec the guest started", pids, err)
		}
		// The guest started it all the same; deleting the exec ends it
		// (before, the agent refused: "is running") and the container is
		// left with its init alone.
		if err := x.Close(e.ctx); err != nil {
			t.Fatalf("closing an exec the guest runs: %v", err)
		}
		if pids, err := c.Pids(e.ctx); err != nil || len(pids) != 1 {
			t.Errorf("pids after the exec's close %v, %v; want the init's alone", pids, err)
		}
		_ = c.Init().Signal(e.ctx, syscall.SIGKILL, true)
		waitExit(t, c.Init())
		if err := c.Delete(e.ctx); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	t.Run("answers nonsense", func(t *testing.T) {
		e := newEnv(t)
		hostile := &hostileAgent{badWait: true}
		e.hv.wrap = func(s api.AgentService) api.AgentService { hostile.AgentService = s; return hostile }
		sb := e.sandbox()
		c, err := sb.Create(e.ctx, e.request("c1", handler.Stdio{}, "sleep", "1000"))
		if err != nil {
			t.Fatal(err)
		}
		if ex := waitExit(t, c.Init()); ex.Status != 255 {
			t.Errorf("exit from a nonsense answer %+v, want 255 (lost)", ex)
		}
		_ = c.Init().Signal(e.ctx, syscall.SIGKILL, true)
		_ = c.Delete(e.ctx)
	})
}

// patchingPolicy is a hook chain whose sandbox.vm answer is patch.
type patchingPolicy struct{ patch func(*handler.VM) }

func (p patchingPolicy) VM(_ context.Context, vm *handler.VM) error    { p.patch(vm); return nil }
func (patchingPolicy) Rootfs(context.Context, *handler.Rootfs) error   { return nil }
func (patchingPolicy) Network(context.Context, *handler.Network) error { return nil }

// TestVMShapeBounded: what a hook at sandbox.vm gives a VM is bounded by
// the host and the configuration, and husk's own kernel parameters stay
// first and unchangeable: a VM out of bounds is never started.
func TestVMShapeBounded(t *testing.T) {
	e := newEnv(t)
	cpus, mib, err := hostResources()
	if err != nil {
		t.Fatal(err)
	}
	capped := e.cfg
	capped.Virt.MaxMemoryMiB = 512
	for _, tt := range []struct {
		name  string
		cfg   *config.Config
		patch func(*handler.VM)
		want  string
	}{
		{"more vCPUs than the host", &e.cfg, func(vm *handler.VM) { vm.VCPUs = min(cpus+1, config.MaxVCPUs) }, "vCPUs"},
		{"more memory than the host", &e.cfg, func(vm *handler.VM) { vm.MemoryMiB = min(mib+1, config.MaxMemoryMiB) }, "MiB"},
		{"more memory than max_memory_mib", &capped, func(vm *handler.VM) { vm.MemoryMiB = 1024 }, "virt.max_memory_mib"},
		{"init=/bin/sh", &e.cfg, func(vm *handler.VM) { vm.KernelParams = append(vm.KernelParams, "init=/bin/sh") }, "init is husk's to set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.hv.started)
			_, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "big", StateDir: t.TempDir(), Config: tt.cfg,
				Policy: patchingPolicy{tt.patch}})
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want an invalid-argument error saying %q", err, tt.want)
			}
			if len(e.hv.started) != before {
				t.Errorf("a VM was started")
			}
		})
	}
	// Within bounds, the hook's parameters follow husk's own.
	sb, err := e.h.NewSandbox(e.ctx, &handler.SandboxRequest{ID: "ok", StateDir: t.TempDir(), Config: &e.cfg,
		Policy: patchingPolicy{func(vm *handler.VM) { vm.KernelParams = append(vm.KernelParams, "mitigations=off") }}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(e.ctx)
	got := e.hv.started[len(e.hv.started)-1].cfg.KernelParams
	if want := append(append([]string{}, baseKernelParams...), "mitigations=off"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("kernel params %q, want %q", got, want)
	}
}

// TestPauseContainer: the CRI's sandbox container of a VM pod runs nothing
// in the guest (no disk, no agent container) and answers as pause does:
// its pid is the VM's process, SIGTERM ends it with 0, other signals but
// SIGKILL are ignored, exec is refused, and the VM's end ends it with 255.
func TestPauseContainer(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox()
	req := e.request("pause", handler.Stdio{}, "/pause")
	req.PodSandbox = true
	c, err := sb.Create(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	vm := e.hv.started[0]
	if len(vm.disks) != 0 {
		t.Errorf("the pause container attached disks %v", vm.disks)
	}
	p := c.Init()
	if err := p.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if p.Pid() != vm.Pid() {
		t.Errorf("pid %d, want the VM's %d", p.Pid(), vm.Pid())
	}
	if pids, err := c.Pids(e.ctx); err != nil || len(pids) != 0 {
		t.Errorf("pids %v, %v: want none", pids, err)
	}
	if _, err := c.Exec(e.ctx, "x", &specs.Process{Args: []string{"true"}, Cwd: "/"}, handler.Stdio{}); !errdefs.IsNotImplemented(err) {
		t.Errorf("exec into the pause container: %v", err)
	}
	if _, err := c.Stats(e.ctx); err != nil {
		t.Errorf("stats: %v", err)
	}
	if err := p.Signal(e.ctx, syscall.SIGUSR1, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
		t.Fatal("SIGUSR1 ended the pause container")
	case <-time.After(50 * time.Millisecond):
	}
	// A real container of the pod still runs beside it.
	c1, err := sb.Create(e.ctx, e.request("c1", handler.Stdio{}, "true"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Init().Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, c1.Init()); ex.Status != 0 {
		t.Errorf("c1 exit %+v", ex)
	}
	if err := c1.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(e.ctx, syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, p); ex.Status != 0 || ex.Pid != vm.Pid() {
		t.Errorf("exit after SIGTERM %+v, want 0", ex)
	}
	if err := c.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}

	// A second pod: its pause container ends with its VM.
	e2 := newEnv(t)
	sb2 := e2.sandbox()
	req2 := e2.request("pause2", handler.Stdio{}, "/pause")
	req2.PodSandbox = true
	c2, err := sb2.Create(e2.ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Init().Start(e2.ctx); err != nil {
		t.Fatal(err)
	}
	e2.hv.started[0].end(errCrashed)
	if ex := waitExit(t, c2.Init()); ex.Status != 255 {
		t.Errorf("exit after the VM's end %+v, want 255", ex)
	}
}
