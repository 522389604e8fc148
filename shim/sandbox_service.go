package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"syscall"
	"time"

	sandboxAPI "github.com/containerd/containerd/api/runtime/sandbox/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/handler"
)

// sandboxService is containerd's sandbox API (containerd.runtime.sandbox.v1)
// for a CRI runtime handler with sandboxer = "shim": the CRI makes the
// pod's network namespace, then asks the shim to create and start the pod
// itself; no pause container, no pause image. husk serves it for VM pods:
// CreateSandbox boots the pod's VM, StartSandbox reports it running.
//
// Inside, the pod is what podsandbox makes of it: a sandbox "container"
// created through runtime.Manager from the spec the pod's config amounts
// to (sandbox_spec.go), which the virt handler holds as its pause record
// (the VM), so the pod's containers, its cleanup after a crash and its
// teardown are the same code under either sandboxer. That container is no
// task of containerd's: its events are not published, and the task API
// does not list it.
type sandboxService struct {
	s *service

	mu   sync.Mutex
	pods map[string]*shimPod // by sandbox id; guarded by mu
}

// shimPod is a pod the sandbox service created.
type shimPod struct {
	task    *runtime.Task
	dir     string // its bundle, where its hosts, resolv.conf and hostname are
	created time.Time
}

var _ sandboxAPI.TTRPCSandboxService = (*sandboxService)(nil)

func newSandboxService(s *service) *sandboxService {
	return &sandboxService{s: s, pods: make(map[string]*shimPod)}
}

// count is how many pods the service holds (they keep the shim up).
func (ss *sandboxService) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.pods)
}

// filesOf returns the bundle holding pod id's files, if the service made
// the pod.
func (ss *sandboxService) filesOf(id string) (string, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p, ok := ss.pods[id]
	if !ok {
		return "", false
	}
	return p.dir, true
}

func (ss *sandboxService) pod(id string) (*shimPod, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p, ok := ss.pods[id]
	if !ok {
		return nil, rpcErr(fmt.Errorf("sandbox %s: %w", id, errdefs.ErrNotFound))
	}
	return p, nil
}

// quiet is the Observer of a sandbox's own container: it publishes nothing
// (containerd knows the pod as a sandbox, not as a task; WaitSandbox and
// SandboxStatus ask the task itself).
type quiet struct{}

func (quiet) Started(string, string, int)         {}
func (quiet) Exited(string, string, handler.Exit) {}
func (quiet) OOM(string)                          {}

// CreateSandbox creates the pod described by the CRI's PodSandboxConfig in
// the request's options: its VM boots here, with the network namespace the
// CRI made.
func (ss *sandboxService) CreateSandbox(_ context.Context, r *sandboxAPI.CreateSandboxRequest) (_ *sandboxAPI.CreateSandboxResponse, retErr error) {
	s := ss.s
	id := r.GetSandboxID()
	// The pod outlives the call: its context is the shim's.
	ctx := logging.With(s.ctx, "sandbox", id)
	created, err := s.gate.create(id)
	if err != nil {
		return nil, rpcErr(err)
	}
	defer created()
	// The id is the manager's too: no other create of it (a second
	// CreateSandbox, or a task's Create) may run meanwhile.
	release, err := s.reserve(id)
	if err != nil {
		return nil, rpcErr(err)
	}
	defer release()
	pc, err := podConfig(r.GetOptions())
	if err != nil {
		return nil, rpcErr(err)
	}
	opts, err := loadBundleOptions(r.GetBundlePath())
	if err != nil {
		return nil, rpcErr(err)
	}
	cfg, err := s.loadConfig(opts)
	if err != nil {
		return nil, rpcErr(err)
	}
	spec := sandboxSpec(id, pc, r.GetNetnsPath())
	h, err := s.mgr.Select(string(cfg.Runtime.DefaultHandler), spec.Annotations)
	if err != nil {
		return nil, rpcErr(err)
	}
	if h.Name() != vocab.Virt {
		return nil, rpcErr(fmt.Errorf("pod %s would run on husk's %s handler, which needs a pause container to hold the pod's namespaces: "+
			"sandboxer \"shim\" serves VM pods only (default_handler = \"virt\"); use sandboxer \"podsandbox\" for this runtime: %w",
			id, h.Name(), errdefs.ErrFailedPrecondition))
	}
	ns, err := namespaces.NamespaceRequired(s.ctx)
	if err != nil {
		return nil, rpcErr(err)
	}
	ss.mu.Lock()
	_, exists := ss.pods[id]
	ss.mu.Unlock()
	if exists {
		return nil, rpcErr(fmt.Errorf("sandbox %s: %w", id, errdefs.ErrAlreadyExists))
	}
	bundle := r.GetBundlePath()
	if err := writeSandboxBundle(bundle, spec, pc); err != nil {
		return nil, rpcErr(err)
	}
	// s.ctx: the manager names the sandbox in its records itself.
	t, err := s.mgr.Create(s.ctx, &handler.CreateRequest{
		ID: id, Namespace: ns, Bundle: bundle, Spec: spec, Config: cfg,
		ContainerdAddress: s.containerd,
	}, quiet{})
	if err != nil {
		logging.L(ctx).Error("sandbox create failed", "error", err)
		return nil, rpcErr(err)
	}
	ss.mu.Lock()
	ss.pods[id] = &shimPod{task: t, dir: bundle, created: time.Now()}
	ss.mu.Unlock()
	if err := s.metrics.serve(s.ctx, t.SandboxDir); err != nil {
		logging.L(ctx).Warn("no management socket", "error", err)
	}
	return &sandboxAPI.CreateSandboxResponse{}, nil
}

// writeSandboxBundle writes the pod's spec as the bundle's config.json
// (the delete command reads a bundle's spec after a crash) and the pod's
// files.
func writeSandboxBundle(bundle string, spec *specs.Spec, pc *podSandboxConfig) error {
	if bundle == "" || !filepath.IsAbs(bundle) {
		return fmt.Errorf("sandbox bundle %q is not an absolute path: %w", bundle, errdefs.ErrInvalidArgument)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("writing the sandbox's spec: %w", err)
	}
	return writePodFiles(bundle, pc, "/etc")
}

// StartSandbox starts the pod's sandbox: the VM already runs; its pid is
// the VMM process's.
func (ss *sandboxService) StartSandbox(ctx context.Context, r *sandboxAPI.StartSandboxRequest) (*sandboxAPI.StartSandboxResponse, error) {
	p, err := ss.pod(r.GetSandboxID())
	if err != nil {
		return nil, err
	}
	pid, err := p.task.Start(logging.With(ss.s.ctx, "sandbox", r.GetSandboxID()), "")
	if err != nil {
		return nil, rpcErr(err)
	}
	return &sandboxAPI.StartSandboxResponse{Pid: uint32(pid), CreatedAt: protobuf.ToTimestamp(p.created)}, nil
}

func (ss *sandboxService) Platform(ctx context.Context, r *sandboxAPI.PlatformRequest) (*sandboxAPI.PlatformResponse, error) {
	if _, err := ss.pod(r.GetSandboxID()); err != nil {
		return nil, err
	}
	return &sandboxAPI.PlatformResponse{Platform: &types.Platform{OS: "linux", Architecture: goruntime.GOARCH}}, nil
}

// StopSandbox ends the pod's sandbox (its VM stays until ShutdownSandbox,
// as a podsandbox pod's stays until its pause container is deleted).
func (ss *sandboxService) StopSandbox(ctx context.Context, r *sandboxAPI.StopSandboxRequest) (*sandboxAPI.StopSandboxResponse, error) {
	p, err := ss.pod(r.GetSandboxID())
	if err != nil {
		return nil, err
	}
	tctx := logging.With(ss.s.ctx, "sandbox", r.GetSandboxID())
	st, err := p.task.Status("")
	if err != nil {
		return nil, rpcErr(err)
	}
	if st.State == runtime.Running {
		if err := p.task.Kill(tctx, "", syscall.SIGKILL, false); err != nil && !errdefs.IsNotFound(err) {
			return nil, rpcErr(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := p.task.Wait(wctx, ""); err != nil {
			return nil, rpcErr(err)
		}
	}
	return &sandboxAPI.StopSandboxResponse{}, nil
}

// WaitSandbox waits for the pod's sandbox to end: StopSandbox, or its VM's
// end.
func (ss *sandboxService) WaitSandbox(ctx context.Context, r *sandboxAPI.WaitSandboxRequest) (*sandboxAPI.WaitSandboxResponse, error) {
	p, err := ss.pod(r.GetSandboxID())
	if err != nil {
		return nil, err
	}
	e, err := p.task.Wait(ctx, "")
	if err != nil {
		return nil, rpcErr(err)
	}
	return &sandboxAPI.WaitSandboxResponse{ExitStatus: uint32(e.Status), ExitedAt: protobuf.ToTimestamp(e.At)}, nil
}

// SandboxStatus answers the CRI's pod states: SANDBOX_READY while the
// sandbox runs, SANDBOX_NOTREADY after.
func (ss *sandboxService) SandboxStatus(ctx context.Context, r *sandboxAPI.SandboxStatusRequest) (*sandboxAPI.SandboxStatusResponse, error) {
	p, err := ss.pod(r.GetSandboxID())
	if err != nil {
		return nil, err
	}
	st, err := p.task.Status("")
	if err != nil {
		return nil, rpcErr(err)
	}
	resp := &sandboxAPI.SandboxStatusResponse{
		SandboxID: r.GetSandboxID(),
		Pid:       uint32(st.Pid),
		State:     "SANDBOX_NOTREADY",
		CreatedAt: protobuf.ToTimestamp(p.created),
	}
	switch st.State {
	case runtime.Running:
		resp.State = "SANDBOX_READY"
	case runtime.Stopped:
		resp.ExitedAt = protobuf.ToTimestamp(st.Exit.At)
	}
	if r.GetVerbose() {
		info, err := json.Marshal(map[string]any{"pid": st.Pid, "runtimeHandler": vocab.Virt, "sandboxer": "shim"})
		if err != nil {
			return nil, rpcErr(err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (ss *sandboxService) PingSandbox(ctx context.Context, r *sandboxAPI.PingRequest) (*sandboxAPI.PingResponse, error) {
	if _, err := ss.pod(r.GetSandboxID()); err != nil {
		return nil, err
	}
	return &sandboxAPI.PingResponse{}, nil
}

// ShutdownSandbox removes the pod's sandbox; with its last container gone
// the pod's VM stops and its state goes, and the shim exits.
func (ss *sandboxService) ShutdownSandbox(ctx context.Context, r *sandboxAPI.ShutdownSandboxRequest) (*sandboxAPI.ShutdownSandboxResponse, error) {
	id := r.GetSandboxID()
	p, err := ss.pod(id)
	if err != nil {
		return nil, err
	}
	tctx := logging.With(ss.s.ctx, "sandbox", id)
	if st, err := p.task.Status(""); err == nil && st.State == runtime.Running {
		if err := p.task.Kill(tctx, "", syscall.SIGKILL, false); err != nil && !errdefs.IsNotFound(err) {
			return nil, rpcErr(err)
		}
	}
	st, err := p.task.Delete(tctx, "")
	if err != nil && st.State != runtime.Deleted {
		return nil, rpcErr(err)
	}
	if err != nil {
		logging.L(tctx).Error("sandbox shutdown left something behind", "error", err)
	}
	ss.mu.Lock()
	delete(ss.pods, id)
	ss.mu.Unlock()
	if ss.s.mgr.Deleted(ss.s.ctx, p.task) {
		ss.s.metrics.unserve(p.task.SandboxDir)
	}
	// containerd asks a sandbox's shim for nothing after this (it closes
	// its connection and removes the bundle; no Shutdown): the shim exits
	// once this answer is out, unless it still serves something.
	ss.s.gate.exitIfIdle()
	return &sandboxAPI.ShutdownSandboxResponse{}, nil
}

// SandboxMetrics are the sandbox's own: its VM's memory.
func (ss *sandboxService) SandboxMetrics(ctx context.Context, r *sandboxAPI.SandboxMetricsRequest) (*sandboxAPI.SandboxMetricsResponse, error) {
	p, err := ss.pod(r.GetSandboxID())
	if err != nil {
		return nil, err
	}
	m, err := p.task.Stats(logging.With(ctx, "sandbox", r.GetSandboxID()))
	if err != nil {
		return nil, rpcErr(err)
	}
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		return nil, rpcErr(err)
	}
	return &sandboxAPI.SandboxMetricsResponse{Metrics: &types.Metric{
		Timestamp: protobuf.ToTimestamp(time.Now()), ID: r.GetSandboxID(), Data: a,
	}}, nil
}

// UpdateSandbox is refused: a VM's size is fixed when the pod starts
// (docs/limitations.md); each container's limits change by its own Update.
func (ss *sandboxService) UpdateSandbox(ctx context.Context, r *sandboxAPI.UpdateSandboxRequest) (*sandboxAPI.UpdateSandboxResponse, error) {
	if _, err := ss.pod(r.GetSandboxID()); err != nil {
		return nil, err
	}
	return nil, rpcErr(fmt.Errorf("sandbox %s: a VM pod's size is fixed when it starts; update its containers instead: %w", r.GetSandboxID(), errdefs.ErrNotImplemented))
}

// bundleOptions is the file, in a shim's first bundle, where the start
// command keeps the runtime options containerd gave it: a sandbox's
// CreateSandbox carries none (containerd hands them to the start command
// only), and they hold the handler's husk configuration (ConfigPath or
// the CRI's inline options).
const bundleOptions = "husk-runtime-options.pb"

// maxBundleOptions bounds the options kept (containerd bounds the start
// command's input at 10 MiB; husk's own configuration is far smaller).
const maxBundleOptions = 4 << 20

// saveBundleOptions keeps the first runtime options among the start
// command's bootstrap extensions in the bundle.
func saveBundleOptions(bundle string, exts []*anypb.Any) error {
	for _, a := range exts {
		if !isRuntimeOptions(a) {
			continue
		}
		b, err := proto.Marshal(a)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(bundle, bundleOptions), b, 0o600)
	}
	return nil
}

// isRuntimeOptions: a is runtime options the shim reads (configFromOptions).
func isRuntimeOptions(a *anypb.Any) bool {
	return a.MessageIs(&runtimeoptions.Options{}) || a.MessageIs(&options.Options{})
}

// loadBundleOptions reads what saveBundleOptions kept; nil when there was
// nothing to keep.
func loadBundleOptions(bundle string) (*anypb.Any, error) {
	b, err := readBounded(filepath.Join(bundle, bundleOptions))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("the runtime options the start command kept: %w", err)
	case len(b) > maxBundleOptions:
		return nil, fmt.Errorf("the runtime options the start command kept are over %d bytes: %w", maxBundleOptions, errdefs.ErrInvalidArgument)
	}
	var a anypb.Any
	if err := proto.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("the runtime options the start command kept: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return &a, nil
}
