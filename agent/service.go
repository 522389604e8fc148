package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/linux"
	"github.com/huskrt/husk/runtime/stdio"
	"github.com/huskrt/husk/version"
)

// Bounds of the long-polls: a host asking for more gets this much.
const (
	maxWait   = time.Minute
	maxOOMIDs = 1024
	// maxDocument bounds an OCI document (spec, process, resources) in a
	// request; ttrpc bounds the whole message at 4 MiB.
	maxDocument = 1 << 20
	// killWait bounds how long deleting a container waits for its killed
	// processes.
	killWait = 10 * time.Second
)

// Options configure a Service.
type Options struct {
	// StateDir holds the containers' bundles and the engine's state.
	StateDir string
	// Guest says the agent is the VM's init: CreateSandbox then sets the
	// hostname. Off in tests on a host.
	Guest bool
	// FindDisk finds the device of the disk with a serial; nil looks in
	// the guest's /sys/block. Tests on a host give loop devices.
	FindDisk func(serial string) (string, error)
	// VolumeDir holds the copies of host volumes (SyncVolume); empty:
	// /run/husk/volumes in a guest, else StateDir/volumes.
	VolumeDir string
	// DebugConsole lets api.DebugConsolePort open shells in the guest
	// (console.go); off, every console is refused. A guest's agent takes
	// it from its kernel command line (DebugConsoleEnabled).
	DebugConsole bool
	// DebugShell is the command a debug console runs; nil: the guest's
	// /bin/sh, else the agent's built-in shell. Tests set it.
	DebugShell func() *exec.Cmd
}

// Service is the agent: api.AgentService on the Linux engine.
type Service struct {
	opts    Options
	engine  *linux.Handler
	cfg     *config.Config
	streams *streams

	mu      sync.Mutex
	sandbox string                // guarded by mu; "" before CreateSandbox
	ctrs    map[string]*container // guarded by mu
	// hostname is the pod's, for its UTS namespace; guarded by mu.
	hostname string
	podns    *podNamespaces

	volMu sync.Mutex // serialises SyncVolume and the volumes' removal

	oomMu      sync.Mutex
	ooms       []string      // containers OOM-killed since the last WaitOOM; guarded by oomMu
	oomChanged chan struct{} // closed and replaced when ooms grows; guarded by oomMu
}

var _ api.AgentService = (*Service)(nil)

// New returns a Service keeping its state in opts.StateDir.
func New(opts Options) (*Service, error) {
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Runtime.StateDir = opts.StateDir
	if opts.FindDisk == nil {
		opts.FindDisk = findDisk
	}
	if opts.VolumeDir == "" {
		opts.VolumeDir = filepath.Join(opts.StateDir, "volumes")
		if opts.Guest {
			opts.VolumeDir = guestVolumeDir
		}
	}
	return &Service{
		opts:       opts,
		engine:     linux.New(),
		cfg:        &cfg,
		streams:    newStreams(),
		ctrs:       map[string]*container{},
		podns:      &podNamespaces{dir: filepath.Join(opts.StateDir, "pod-ns")},
		oomChanged: make(chan struct{}),
	}, nil
}

// rpcErr turns an error into the status the host maps back to errdefs.
func rpcErr(err error) error {
	if err == nil {
		return nil
	}
	return errgrpc.ToGRPC(err)
}

// ctx is the context processes and their stdio get: not the call's (a
// process outlives the call that made it), with the agent's streams.
func (s *Service) ctx(ctx context.Context) context.Context {
	return stdio.WithStreams(context.WithoutCancel(ctx), s.streams)
}

// Check says who the agent is.
func (s *Service) Check(ctx context.Context, _ *api.CheckRequest) (*api.CheckResponse, error) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	return &api.CheckResponse{
		ProtocolVersion:  api.ProtocolVersion,
		AgentVersion:     version.Version,
		KernelRelease:    unix.ByteSliceToString(uts.Release[:]),
		BootTimeUnixNano: time.Now().Add(-time.Duration(si.Uptime) * time.Second).UnixNano(),
	}, nil
}

// CreateSandbox takes the pod: its id, and in the guest its hostname.
func (s *Service) CreateSandbox(ctx context.Context, r *api.CreateSandboxRequest) (*api.CreateSandboxResponse, error) {
	if err := checkID("sandbox", r.SandboxId); err != nil {
		return nil, rpcErr(err)
	}
	if err := checkNetwork(r.Network); err != nil {
		return nil, rpcErr(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sandbox != "" {
		return nil, rpcErr(fmt.Errorf("sandbox %s: this VM serves %s: %w", r.SandboxId, s.sandbox, errdefs.ErrAlreadyExists))
	}
	if s.opts.Guest && r.Hostname != "" {
		if err := unix.Sethostname([]byte(r.Hostname)); err != nil {
			return nil, rpcErr(fmt.Errorf("setting hostname %q: %w", r.Hostname, err))
		}
	}
	if s.opts.Guest {
		if err := guestNetwork(ctx, r.Network); err != nil {
			return nil, rpcErr(err)
		}
	}
	s.sandbox = r.SandboxId
	s.hostname = r.Hostname
	return &api.CreateSandboxResponse{}, nil
}

// DestroySandbox deletes what containers are left, removes the pod's
// volumes and forgets the pod.
func (s *Service) DestroySandbox(ctx context.Context, r *api.DestroySandboxRequest) (*api.DestroySandboxResponse, error) {
	s.mu.Lock()
	if s.sandbox == "" || s.sandbox != r.SandboxId {
		s.mu.Unlock()
		return nil, rpcErr(fmt.Errorf("sandbox %q: %w", r.SandboxId, errdefs.ErrNotFound))
	}
	left := make([]*container, 0, len(s.ctrs))
	for _, c := range s.ctrs {
		left = append(left, c)
	}
	s.mu.Unlock()
	var errs []error
	for _, c := range left {
		if err := s.deleteContainer(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	// The volumes go with the pod (an emptyDir lives as long as its pod).
	s.volMu.Lock()
	if err := os.RemoveAll(s.opts.VolumeDir); err != nil {
		errs = append(errs, fmt.Errorf("removing the volumes: %w", err))
	}
	s.volMu.Unlock()
	if err := s.podns.close(); err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	s.sandbox, s.hostname = "", ""
	s.mu.Unlock()
	s.streams.close()
	if len(errs) > 0 {
		return nil, rpcErr(fmt.Errorf("destroying sandbox %s: %v", r.SandboxId, errs))
	}
	return &api.DestroySandboxResponse{}, nil
}

// GuestTime sets the guest's clock if asked, and returns it.
func (s *Service) GuestTime(ctx context.Context, r *api.GuestTimeRequest) (*api.GuestTimeResponse, error) {
	if r.SetUnixNano != 0 {
		if !s.opts.Guest {
			return nil, rpcErr(fmt.Errorf("setting the clock outside a guest: %w", errdefs.ErrNotImplemented))
		}
		ts := unix.NsecToTimespec(r.SetUnixNano)
		if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
			return nil, rpcErr(fmt.Errorf("setting the clock: %w", err))
		}
	}
	return &api.GuestTimeResponse{UnixNano: time.Now().UnixNano()}, nil
}

// WaitOOM answers with the containers OOM-killed since the last call, at
// once if there are any, else at the first kill or after the timeout.
func (s *Service) WaitOOM(ctx context.Context, r *api.WaitOOMRequest) (*api.WaitOOMResponse, error) {
	timer := time.NewTimer(waitBound(r.TimeoutMs))
	defer timer.Stop()
	for {
		s.oomMu.Lock()
		if len(s.ooms) > 0 {
			n := min(len(s.ooms), maxOOMIDs)
			ids := s.ooms[:n:n]
			s.ooms = s.ooms[n:]
			s.oomMu.Unlock()
			return &api.WaitOOMResponse{ContainerIds: ids}, nil
		}
		changed := s.oomChanged
		s.oomMu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return &api.WaitOOMResponse{}, nil
		case <-ctx.Done():
			return nil, rpcErr(ctx.Err())
		}
	}
}

// oomKilled records an OOM kill in container id.
func (s *Service) oomKilled(id string) {
	s.oomMu.Lock()
	defer s.oomMu.Unlock()
	if len(s.ooms) < 4*maxOOMIDs { // a flood is still reported, in part
		s.ooms = append(s.ooms, id)
	}
	close(s.oomChanged)
	s.oomChanged = make(chan struct{})
}

// waitBound is a long-poll's timeout: the host's, at most maxWait.
func waitBound(ms uint32) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 || d > maxWait {
		return maxWait
	}
	return d
}

// checkID accepts what the host's runtime accepts as an id.
func checkID(what, id string) error {
	if id == "" || len(id) > 255 {
		return fmt.Errorf("%s id %q: want 1 to 255 characters: %w", what, id, errdefs.ErrInvalidArgument)
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%s id %q: %q is not allowed: %w", what, id, c, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// decode reads an OCI document of a request into v.
func decode(what string, b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("%s is missing: %w", what, errdefs.ErrInvalidArgument)
	}
	if len(b) > maxDocument {
		return fmt.Errorf("%s is %d bytes, at most %d: %w", what, len(b), maxDocument, errdefs.ErrInvalidArgument)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v: %w", what, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkSpec is the least a spec must have to be created.
func checkSpec(s *specs.Spec) error {
	switch {
	case s.Process == nil || len(s.Process.Args) == 0:
		return fmt.Errorf("spec: process.args is empty: %w", errdefs.ErrInvalidArgument)
	case s.Root == nil:
		return fmt.Errorf("spec: root is missing: %w", errdefs.ErrInvalidArgument)
	case s.Linux == nil:
		return fmt.Errorf("spec: linux is missing: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// bundleDir is container id's directory.
func (s *Service) bundleDir(id string) string {
	return filepath.Join(s.opts.StateDir, "containers", id)
}
