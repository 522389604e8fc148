package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/runtime/handler"
)

// container is one container of the pod, as the agent keeps it.
type container struct {
	id     string
	c      handler.Container
	rootfs *mountedRootfs // nil when the spec's root was already in place

	mu    sync.Mutex
	procs map[string]handler.Process // by exec id, "" the init; guarded by mu
}

func (c *container) proc(execID string) (handler.Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[execID]
	if !ok {
		if execID == "" {
			return nil, fmt.Errorf("container %s has no init process: %w", c.id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("exec %s of container %s: %w", execID, c.id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (s *Service) container(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

func (s *Service) process(containerID, execID string) (*container, handler.Process, error) {
	c, err := s.container(containerID)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.proc(execID)
	return c, p, err
}

func toStdio(s *api.Stdio) handler.Stdio {
	if s == nil {
		return handler.Stdio{}
	}
	return handler.Stdio{Stdin: streamName(s.Stdin), Stdout: streamName(s.Stdout), Stderr: streamName(s.Stderr), Terminal: s.Terminal}
}

// CreateContainer mounts the container's rootfs (when a disk is named) and
// creates it with the Linux engine; its init waits for StartContainer.
func (s *Service) CreateContainer(ctx context.Context, r *api.CreateContainerRequest) (_ *api.CreateContainerResponse, retErr error) {
	defer func() { retErr = rpcErr(retErr) }()
	if err := checkID("container", r.ContainerId); err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := decode("spec", r.Spec, &spec); err != nil {
		return nil, err
	}
	if err := checkSpec(&spec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	hostname := s.hostname
	s.mu.Unlock()
	if err := s.podns.joinPod(&spec, hostname); err != nil {
		return nil, fmt.Errorf("container %s: %w", r.ContainerId, err)
	}
	s.mu.Lock()
	if _, ok := s.ctrs[r.ContainerId]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("container %s: %w", r.ContainerId, errdefs.ErrAlreadyExists)
	}
	// Reserved while it is created: a second create of the id fails.
	s.ctrs[r.ContainerId] = nil
	s.mu.Unlock()
	defer func() {
		if retErr != nil {
			s.mu.Lock()
			delete(s.ctrs, r.ContainerId)
			s.mu.Unlock()
		}
	}()

	bundle := s.bundleDir(r.ContainerId)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = os.RemoveAll(bundle)
		}
	}()
	c := &container{id: r.ContainerId, procs: map[string]handler.Process{}}
	if r.Rootfs != nil && r.Rootfs.DiskSerial != "" {
		m, err := mountRootfs(r.Rootfs, bundle, s.opts.FindDisk)
		if err != nil {
			return nil, err
		}
		defer func() {
			if retErr != nil {
				_ = m.unmount()
			}
		}()
		c.rootfs = m
		root := *spec.Root
		root.Path = m.path
		spec.Root = &root
	} else if !filepath.IsAbs(spec.Root.Path) {
		return nil, fmt.Errorf("container %s: no rootfs disk and root.path %q is not a path in the guest: %w", r.ContainerId, spec.Root.Path, errdefs.ErrInvalidArgument)
	}

	hc, err := s.engine.Create(s.ctx(ctx), &handler.CreateRequest{
		ID:        r.ContainerId,
		Namespace: "husk",
		Bundle:    bundle,
		SandboxID: s.sandboxID(),
		StateDir:  s.opts.StateDir,
		Spec:      &spec,
		Stdio:     toStdio(r.Stdio),
		Config:    s.cfg,
	})
	if err != nil {
		return nil, err
	}
	c.c = hc
	c.procs[""] = hc.Init()
	if oom := hc.OOM(); oom != nil {
		go func() {
			for range oom {
				s.oomKilled(c.id)
			}
		}()
	}
	s.mu.Lock()
	s.ctrs[c.id] = c
	s.mu.Unlock()
	return &api.CreateContainerResponse{Pid: uint32(hc.Init().Pid())}, nil
}

func (s *Service) sandboxID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sandbox
}

// StartContainer lets a created container's program run.
func (s *Service) StartContainer(ctx context.Context, r *api.StartContainerRequest) (*api.StartContainerResponse, error) {
	_, p, err := s.process(r.ContainerId, "")
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := p.Start(s.ctx(ctx)); err != nil {
		return nil, rpcErr(err)
	}
	return &api.StartContainerResponse{Pid: uint32(p.Pid())}, nil
}

// ExecProcess prepares another process in a container.
func (s *Service) ExecProcess(ctx context.Context, r *api.ExecProcessRequest) (*api.ExecProcessResponse, error) {
	if err := checkID("exec", r.ExecId); err != nil {
		return nil, rpcErr(err)
	}
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	var ps specs.Process
	if err := decode("process", r.Process, &ps); err != nil {
		return nil, rpcErr(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.procs[r.ExecId]; ok {
		return nil, rpcErr(fmt.Errorf("exec %s of container %s: %w", r.ExecId, c.id, errdefs.ErrAlreadyExists))
	}
	p, err := c.c.Exec(s.ctx(ctx), r.ExecId, &ps, toStdio(r.Stdio))
	if err != nil {
		return nil, rpcErr(err)
	}
	c.procs[r.ExecId] = p
	return &api.ExecProcessResponse{}, nil
}

// StartProcess starts a prepared exec.
func (s *Service) StartProcess(ctx context.Context, r *api.StartProcessRequest) (*api.StartProcessResponse, error) {
	if r.ExecId == "" {
		return nil, rpcErr(fmt.Errorf("start process: exec id is empty (StartContainer starts the init): %w", errdefs.ErrInvalidArgument))
	}
	_, p, err := s.process(r.ContainerId, r.ExecId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := p.Start(s.ctx(ctx)); err != nil {
		return nil, rpcErr(err)
	}
	return &api.StartProcessResponse{Pid: uint32(p.Pid())}, nil
}

// SignalProcess signals a process, or all of its container's.
func (s *Service) SignalProcess(ctx context.Context, r *api.SignalProcessRequest) (*api.SignalProcessResponse, error) {
	if r.Signal == 0 || r.Signal > 64 {
		return nil, rpcErr(fmt.Errorf("signal %d: want 1 to 64: %w", r.Signal, errdefs.ErrInvalidArgument))
	}
	_, p, err := s.process(r.ContainerId, r.ExecId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := p.Signal(ctx, syscall.Signal(r.Signal), r.All); err != nil {
		return nil, rpcErr(err)
	}
	return &api.SignalProcessResponse{}, nil
}

// WaitProcess answers when the process exits or the timeout passes.
func (s *Service) WaitProcess(ctx context.Context, r *api.WaitProcessRequest) (*api.WaitProcessResponse, error) {
	_, p, err := s.process(r.ContainerId, r.ExecId)
	if err != nil {
		return nil, rpcErr(err)
	}
	timer := time.NewTimer(waitBound(r.TimeoutMs))
	defer timer.Stop()
	select {
	case <-p.Done():
		e := p.Exit()
		return &api.WaitProcessResponse{Exited: true, ExitStatus: int32(e.Status), ExitedAtUnixNano: e.At.UnixNano(), Pid: uint32(e.Pid)}, nil
	case <-timer.C:
		return &api.WaitProcessResponse{Pid: uint32(p.Pid())}, nil
	case <-ctx.Done():
		return nil, rpcErr(ctx.Err())
	}
}

// CloseStdin closes a process's stdin once what the host sent is in.
func (s *Service) CloseStdin(ctx context.Context, r *api.CloseStdinRequest) (*api.CloseStdinResponse, error) {
	_, p, err := s.process(r.ContainerId, r.ExecId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := p.CloseStdin(ctx); err != nil {
		return nil, rpcErr(err)
	}
	return &api.CloseStdinResponse{}, nil
}

// ResizePty resizes a process's terminal.
func (s *Service) ResizePty(ctx context.Context, r *api.ResizePtyRequest) (*api.ResizePtyResponse, error) {
	_, p, err := s.process(r.ContainerId, r.ExecId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := p.ResizePty(ctx, r.Width, r.Height); err != nil {
		return nil, rpcErr(err)
	}
	return &api.ResizePtyResponse{}, nil
}

// DeleteProcess forgets an exec that has exited (or never started),
// releasing its stdio.
func (s *Service) DeleteProcess(ctx context.Context, r *api.DeleteProcessRequest) (*api.DeleteProcessResponse, error) {
	if r.ExecId == "" {
		return nil, rpcErr(fmt.Errorf("delete process: exec id is empty (DeleteContainer deletes the init): %w", errdefs.ErrInvalidArgument))
	}
	c, p, err := s.process(r.ContainerId, r.ExecId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if p.Pid() != 0 {
		select {
		case <-p.Done():
		default:
			return nil, rpcErr(fmt.Errorf("exec %s of container %s is running: %w", r.ExecId, c.id, errdefs.ErrFailedPrecondition))
		}
	}
	c.mu.Lock()
	delete(c.procs, r.ExecId)
	c.mu.Unlock()
	if err := p.Close(ctx); err != nil {
		return nil, rpcErr(err)
	}
	return &api.DeleteProcessResponse{}, nil
}

// DeleteContainer kills what is left of a container and removes it: its
// processes, cgroup, engine state, rootfs mounts and bundle.
func (s *Service) DeleteContainer(ctx context.Context, r *api.DeleteContainerRequest) (*api.DeleteContainerResponse, error) {
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := s.deleteContainer(ctx, c); err != nil {
		return nil, rpcErr(err)
	}
	return &api.DeleteContainerResponse{}, nil
}

func (s *Service) deleteContainer(ctx context.Context, c *container) error {
	if c == nil { // being created
		return fmt.Errorf("container is being created: %w", errdefs.ErrFailedPrecondition)
	}
	init, err := c.proc("")
	if err != nil {
		return err
	}
	select {
	case <-init.Done():
	default:
		_ = init.Signal(ctx, syscall.SIGKILL, true)
		select {
		case <-init.Done():
		case <-time.After(killWait):
			return fmt.Errorf("container %s: init did not exit after SIGKILL: %w", c.id, errdefs.ErrUnavailable)
		}
	}
	c.mu.Lock()
	procs := c.procs
	c.procs = map[string]handler.Process{}
	c.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, c.c.Delete(ctx))
	if c.rootfs != nil {
		errs = append(errs, c.rootfs.unmount())
	}
	errs = append(errs, os.RemoveAll(s.bundleDir(c.id)))
	s.mu.Lock()
	delete(s.ctrs, c.id)
	s.mu.Unlock()
	return errors.Join(errs...)
}

// PauseContainer freezes a container.
func (s *Service) PauseContainer(ctx context.Context, r *api.PauseContainerRequest) (*api.PauseContainerResponse, error) {
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := c.c.Pause(ctx); err != nil {
		return nil, rpcErr(err)
	}
	return &api.PauseContainerResponse{}, nil
}

// ResumeContainer thaws a container.
func (s *Service) ResumeContainer(ctx context.Context, r *api.ResumeContainerRequest) (*api.ResumeContainerResponse, error) {
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	if err := c.c.Resume(ctx); err != nil {
		return nil, rpcErr(err)
	}
	return &api.ResumeContainerResponse{}, nil
}

// UpdateContainer changes a container's resource limits.
func (s *Service) UpdateContainer(ctx context.Context, r *api.UpdateContainerRequest) (*api.UpdateContainerResponse, error) {
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	var res specs.LinuxResources
	if err := decode("resources", r.Resources, &res); err != nil {
		return nil, rpcErr(err)
	}
	if err := c.c.Update(ctx, &res); err != nil {
		return nil, rpcErr(err)
	}
	return &api.UpdateContainerResponse{}, nil
}

// StatsContainer returns the container's cgroup metrics message.
func (s *Service) StatsContainer(ctx context.Context, r *api.StatsContainerRequest) (*api.StatsContainerResponse, error) {
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	v, err := c.c.Stats(ctx)
	if err != nil {
		return nil, rpcErr(err)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, rpcErr(fmt.Errorf("stats of %s are a %T, not a message: %w", c.id, v, errdefs.ErrNotImplemented))
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, rpcErr(err)
	}
	return &api.StatsContainerResponse{TypeUrl: string(m.ProtoReflect().Descriptor().FullName()), Value: b}, nil
}

// ListPids lists the container's processes (guest pids).
func (s *Service) ListPids(ctx context.Context, r *api.ListPidsRequest) (*api.ListPidsResponse, error) {
	c, err := s.container(r.ContainerId)
	if err != nil {
		return nil, rpcErr(err)
	}
	pids, err := c.c.Pids(ctx)
	if err != nil {
		return nil, rpcErr(err)
	}
	out := make([]uint32, 0, len(pids))
	for _, p := range pids {
		out = append(out, uint32(p))
	}
	return &api.ListPidsResponse{Pids: out}, nil
}
