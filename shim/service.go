package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"

	eventstypes "github.com/containerd/containerd/api/events"
	sandboxAPI "github.com/containerd/containerd/api/runtime/sandbox/v1"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

var empty = &ptypes.Empty{}

// service is the containerd task API (v3) over the runtime's tasks. It only
// translates: lifecycle rules live in runtime.Task, and errors are turned
// into ttrpc statuses here and nowhere else.
type service struct {
	ctx     context.Context // the shim's; carries the logger
	level   *slog.LevelVar
	mgr     *runtime.Manager
	events  *publisher
	sd      shutdown.Service
	metrics *metrics
	// containerd is containerd's gRPC address (the shim's -address), for
	// handlers that read a container's image and for the hooks' events.
	containerd string

	mu    sync.Mutex
	tasks map[string]*runtime.Task // guarded by mu
	// creating holds the ids whose Create is under way, so that a second
	// Create of one id is refused before it reaches the manager; guarded
	// by mu.
	creating map[string]struct{}

	// gate decides when the shim exits (group.go).
	gate *exitGate
	// sandboxes serves containerd's sandbox API (sandbox_service.go).
	sandboxes *sandboxService
	// starter is what the start command said; guarded by mu.
	starter starter
}

var _ taskAPI.TTRPCTaskService = (*service)(nil)

func newService(ctx context.Context, mgr *runtime.Manager, pub shim.Publisher, sd shutdown.Service, level *slog.LevelVar) *service {
	m := newMetrics()
	m.sandboxes = mgr.Measure
	s := &service{
		ctx:     ctx,
		level:   level,
		mgr:     mgr,
		events:  newPublisher(ctx, pub, sd, m),
		sd:      sd,
		metrics: m,
		tasks:   make(map[string]*runtime.Task),

		creating: make(map[string]struct{}),
	}
	s.sandboxes = newSandboxService(s)
	s.gate = newExitGate(s.taskCount, s.exit)
	recs := &records{address: func() string { return s.containerd }}
	mgr.HookOptions = runtime.HookOptions{CacheDir: hooks.DefaultCacheDir, Observe: m.observeHook, ImageOf: recs.ImageOf}
	sd.RegisterCallback(func(context.Context) error { return m.close() })
	sd.RegisterCallback(func(context.Context) error { return recs.close() })
	return s
}

// RegisterTTRPC makes the service a pkg/shim TTRPCService.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	sandboxAPI.RegisterTTRPCSandboxService(server, s.sandboxes)
	registerGroup(server, s.gate, os.Getpid())
	return nil
}

// UnaryServerInterceptor makes the service a pkg/shim
// TTRPCServerUnaryOptioner. Every call gets the shim's logger in its
// context: ttrpc makes a call's context from its connection's, which
// pkg/shim set up before this service had a logger, and a context without
// one logs nowhere (a hook's audit line or a module's log line included).
// The exit gate counts the calls in flight.
func (s *service) UnaryServerInterceptor() ttrpc.UnaryServerInterceptor {
	l := logging.L(s.ctx)
	return func(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (any, error) {
		return s.gate.intercept(logging.WithLogger(ctx, l), unmarshal, info, method)
	}
}

func rpcErr(err error) error {
	if err == nil {
		return nil
	}
	return toRPCError(err)
}

// reserve claims id for a Create until release is called: an id that is
// being created or names a task already is refused (errdefs
// ErrAlreadyExists). Two creates of one id had both reached the manager,
// and the loser's undo removed the winner's record.
func (s *service) reserve(id string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.tasks[id]
	_, creating := s.creating[id]
	if exists || creating {
		return nil, fmt.Errorf("task %s: %w", id, errdefs.ErrAlreadyExists)
	}
	s.creating[id] = struct{}{}
	return func() {
		s.mu.Lock()
		delete(s.creating, id)
		s.mu.Unlock()
	}, nil
}

func (s *service) task(id string) (*runtime.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return nil, errgrpc.ToGRPC(fmt.Errorf("task %s: %w", id, errdefs.ErrNotFound))
	}
	return t, nil
}

// loadConfig reads husk's config for a new task: the path given in the
// runtime options (ConfigPath), else the options' inline TOML (ConfigBody:
// the CRI sends a runtime's whole options table there when it has no
// ConfigPath), else $HUSK_CONFIG, else /etc/husk. runc's options type is
// accepted too (the CRI sends it for runc-like runtimes): its NoPivotRoot
// and SystemdCgroup are honoured as runc would.
func (s *service) loadConfig(opts *anypb.Any) (*config.Config, error) {
	cfg, runcOpts, err := configFromOptions(opts)
	if err != nil {
		return nil, err
	}
	if runcOpts != nil {
		cfg.Linux.NoPivotRoot = cfg.Linux.NoPivotRoot || runcOpts.NoPivotRoot
		cfg.Linux.SystemdCgroup = cfg.Linux.SystemdCgroup || runcOpts.SystemdCgroup
	}
	s.level.Set(cfg.Log.Level.Level())
	return cfg, nil
}

// inlineConfigName names the CRI's inline configuration in errors.
const inlineConfigName = "containerd runtime options (ConfigBody)"

func configFromOptions(opts *anypb.Any) (*config.Config, *options.Options, error) {
	if opts == nil || opts.GetValue() == nil {
		cfg, err := config.Load(config.Path(""))
		return cfg, nil, err
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime options: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	switch o := v.(type) {
	case *runtimeoptions.Options:
		if o.ConfigPath == "" && len(o.ConfigBody) > 0 {
			cfg, err := config.LoadInline(inlineConfigName, o.ConfigBody)
			return cfg, nil, err
		}
		if err := checkConfigPath(o.ConfigPath); err != nil {
			return nil, nil, err
		}
		cfg, err := config.Load(config.Path(o.ConfigPath))
		return cfg, nil, err
	case *options.Options:
		cfg, err := config.Load(config.Path(""))
		return cfg, o, err
	default:
		return nil, nil, fmt.Errorf("runtime options of type %T are not husk's: %w", v, errdefs.ErrInvalidArgument)
	}
}

func (s *service) Create(_ context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	// The task outlives the call: its context is the shim's.
	ctx := logging.With(s.ctx, "id", r.ID)
	// The shim stays up while the task is being created (group.go).
	created, err := s.gate.create(r.ID)
	if err != nil {
		return nil, createErr(err)
	}
	defer created()
	release, err := s.reserve(r.ID)
	if err != nil {
		return nil, createErr(err)
	}
	defer release() // after the task is in s.tasks, or the create failed
	cfg, err := s.loadConfig(r.Options)
	if err != nil {
		return nil, createErr(err)
	}
	spec, err := runtime.LoadSpec(r.Bundle)
	if err != nil {
		return nil, createErr(err)
	}
	if pod := runtime.PodOf(r.ID, spec.Annotations); !pod.IsSandbox {
		// A container of a pod the sandbox API made: the pod's hosts,
		// resolv.conf and hostname are the shim's to give.
		if dir, ok := s.sandboxes.filesOf(pod.SandboxID); ok {
			podFileMounts(spec, dir)
		}
	}
	ns, err := namespaces.NamespaceRequired(s.ctx)
	if err != nil {
		return nil, createErr(err)
	}
	req := &handler.CreateRequest{
		ID:        r.ID,
		Namespace: ns,
		Bundle:    r.Bundle,
		Spec:      spec,
		Stdio:     handler.Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Config:    cfg,

		ContainerdAddress: s.containerd,
	}
	for _, m := range r.Rootfs {
		req.Rootfs = append(req.Rootfs, mount.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	t, err := s.mgr.Create(ctx, req, s.events)
	if err != nil {
		s.metrics.creates.with("error").inc()
		logging.L(ctx).Error("create failed", "error", err)
		return nil, createErr(err)
	}
	s.metrics.creates.with("ok").inc()
	s.metrics.tasks.inc()
	if err := s.metrics.serve(s.ctx, t.SandboxDir); err != nil {
		logging.L(ctx).Warn("no management socket", "error", err)
	}
	s.mu.Lock()
	s.tasks[r.ID] = t
	s.mu.Unlock()
	s.events.send(&eventstypes.TaskCreate{
		ContainerID: r.ID,
		Bundle:      r.Bundle,
		Rootfs:      r.Rootfs,
		IO:          &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Checkpoint:  r.Checkpoint,
		Pid:         uint32(t.Pid()),
	})
	return &taskAPI.CreateTaskResponse{Pid: uint32(t.Pid())}, nil
}

func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	// The task publishes TaskStart (TaskExecStarted) itself, through the
	// publisher as its Observer, so that it precedes the process's TaskExit.
	pid, err := t.Start(logging.With(s.ctx, "id", r.ID, "exec", r.ExecID), r.ExecID)
	if err != nil {
		return nil, rpcErr(err)
	}
	return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
}

func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	st, err := t.Delete(logging.With(s.ctx, "id", r.ID, "exec", r.ExecID), r.ExecID)
	if err != nil && st.State != runtime.Deleted {
		return nil, rpcErr(err)
	}
	if err != nil {
		// Deleted, but something was left behind: say so in the log, the
		// task is gone for containerd either way.
		logging.L(s.ctx).Error("delete left something behind", "id", r.ID, "error", err)
	}
	if r.ExecID == "" {
		s.mu.Lock()
		delete(s.tasks, r.ID)
		s.mu.Unlock()
		if s.mgr.Deleted(s.ctx, t) {
			s.metrics.unserve(t.SandboxDir)
		}
		s.metrics.tasks.dec()
		s.events.send(&eventstypes.TaskDelete{
			ContainerID: r.ID,
			Pid:         uint32(st.Pid),
			ExitStatus:  uint32(st.Exit.Status),
			ExitedAt:    protobuf.ToTimestamp(st.Exit.At),
		})
	}
	return &taskAPI.DeleteResponse{
		Pid:        uint32(st.Pid),
		ExitStatus: uint32(st.Exit.Status),
		ExitedAt:   protobuf.ToTimestamp(st.Exit.At),
	}, nil
}

func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	var ps specs.Process
	if r.Spec == nil {
		return nil, rpcErr(fmt.Errorf("exec %s: no process spec: %w", r.ExecID, errdefs.ErrInvalidArgument))
	}
	if err := json.Unmarshal(r.Spec.GetValue(), &ps); err != nil {
		return nil, rpcErr(fmt.Errorf("exec %s: malformed process spec: %v: %w", r.ExecID, err, errdefs.ErrInvalidArgument))
	}
	stdio := handler.Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}
	if err := t.Exec(logging.With(s.ctx, "id", r.ID, "exec", r.ExecID), r.ExecID, &ps, stdio); err != nil {
		return nil, rpcErr(err)
	}
	s.metrics.execs.inc()
	s.events.send(&eventstypes.TaskExecAdded{ContainerID: r.ID, ExecID: r.ExecID})
	return empty, nil
}

func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	return empty, rpcErr(t.ResizePty(logging.With(ctx, "id", r.ID, "exec", r.ExecID), r.ExecID, r.Width, r.Height))
}

func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	st, err := t.Status(r.ExecID)
	if err != nil {
		return nil, rpcErr(err)
	}
	id := r.ExecID
	if id == "" {
		id = r.ID
	}
	return &taskAPI.StateResponse{
		ID:         id,
		Bundle:     t.Bundle,
		Pid:        uint32(st.Pid),
		Status:     taskStatus(st.State),
		Stdin:      st.Stdio.Stdin,
		Stdout:     st.Stdio.Stdout,
		Stderr:     st.Stdio.Stderr,
		Terminal:   st.Stdio.Terminal,
		ExitStatus: uint32(st.Exit.Status),
		ExitedAt:   protobuf.ToTimestamp(st.Exit.At),
		ExecID:     r.ExecID,
	}, nil
}

func taskStatus(s runtime.State) task.Status {
	switch s {
	case runtime.Created:
		return task.Status_CREATED
	case runtime.Running:
		return task.Status_RUNNING
	case runtime.Paused:
		return task.Status_PAUSED
	case runtime.Stopped:
		return task.Status_STOPPED
	}
	return task.Status_UNKNOWN
}

func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	if err := t.Pause(logging.With(ctx, "id", r.ID)); err != nil {
		return nil, rpcErr(err)
	}
	s.events.send(&eventstypes.TaskPaused{ContainerID: r.ID})
	return empty, nil
}

func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	if err := t.Resume(logging.With(ctx, "id", r.ID)); err != nil {
		return nil, rpcErr(err)
	}
	s.events.send(&eventstypes.TaskResumed{ContainerID: r.ID})
	return empty, nil
}

func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	return empty, rpcErr(t.Kill(logging.With(ctx, "id", r.ID, "exec", r.ExecID), r.ExecID, syscall.Signal(r.Signal), r.All))
}

func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	pids, execs, err := t.Pids(logging.With(ctx, "id", r.ID))
	if err != nil {
		return nil, rpcErr(err)
	}
	resp := &taskAPI.PidsResponse{}
	for _, pid := range pids {
		info := &task.ProcessInfo{Pid: uint32(pid)}
		if id, ok := execs[pid]; ok {
			a, err := typeurl.MarshalAnyToProto(&options.ProcessDetails{ExecID: id})
			if err != nil {
				return nil, rpcErr(err)
			}
			info.Info = a
		}
		resp.Processes = append(resp.Processes, info)
	}
	return resp, nil
}

func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	if !r.Stdin {
		return empty, nil
	}
	return empty, rpcErr(t.CloseStdin(logging.With(ctx, "id", r.ID, "exec", r.ExecID), r.ExecID))
}

func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, rpcErr(fmt.Errorf("checkpoint of %s: husk does not support checkpoint/restore yet: %w", r.ID, errdefs.ErrNotImplemented))
}

func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	var res specs.LinuxResources
	if r.Resources == nil {
		return nil, rpcErr(fmt.Errorf("update %s: no resources: %w", r.ID, errdefs.ErrInvalidArgument))
	}
	if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
		return nil, rpcErr(fmt.Errorf("update %s: malformed resources: %v: %w", r.ID, err, errdefs.ErrInvalidArgument))
	}
	return empty, rpcErr(t.Update(logging.With(ctx, "id", r.ID), &res))
}

func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	e, err := t.Wait(ctx, r.ExecID)
	if err != nil {
		return nil, rpcErr(err)
	}
	return &taskAPI.WaitResponse{ExitStatus: uint32(e.Status), ExitedAt: protobuf.ToTimestamp(e.At)}, nil
}

func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	t, err := s.task(r.ID)
	if err != nil {
		return nil, err
	}
	m, err := t.Stats(logging.With(ctx, "id", r.ID))
	if err != nil {
		return nil, rpcErr(err)
	}
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		return nil, rpcErr(err)
	}
	return &taskAPI.StatsResponse{Stats: a}, nil
}

func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	resp := &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid())}
	if t, err := s.task(r.ID); err == nil {
		resp.TaskPid = uint32(t.Pid())
	}
	return resp, nil
}

// Shutdown ends the shim once it serves no task.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.gate.exitIfIdle()
	return empty, nil
}

// started takes in what the start command that spawned the shim said.
func (s *service) started(st starter) {
	s.mu.Lock()
	s.starter = st
	s.mu.Unlock()
	if st.first != "" {
		s.gate.reserve(st.first)
	}
}

// exit ends the shim (the exit gate decided), first removing its socket if
// it is still its own.
func (s *service) exit() {
	s.mu.Lock()
	st := s.starter
	s.mu.Unlock()
	if st.socket != "" {
		if err := removeOwnSocket(st.socket, st.owner); err != nil {
			logging.L(s.ctx).Warn("removing the shim socket", "error", err)
		}
	}
	s.sd.Shutdown()
}

// taskCount is how many tasks and sandboxes the shim serves.
func (s *service) taskCount() int {
	s.mu.Lock()
	n := len(s.tasks)
	s.mu.Unlock()
	return n + s.sandboxes.count()
}
