package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/runtime/resource/rootfs"
)

// Name is the handler's name in config and annotations.
const Name = vocab.Linux

// Handler creates native Linux containers.
type Handler struct{}

// New returns the LinuxContainer handler.
func New() *Handler { return &Handler{} }

// Name returns "linux".
func (*Handler) Name() string { return Name }

// stateRoot is where libcontainer keeps the state of a sandbox's
// containers.
func stateRoot(sandboxDir string) string {
	return filepath.Join(sandboxDir, Name)
}

// NewSandbox returns the Linux part of a pod: containers on the host share
// nothing at the pod level that the handler holds (the pod's cgroup is the
// runtime's), so it only creates them.
func (h *Handler) NewSandbox(ctx context.Context, req *handler.SandboxRequest) (handler.Sandbox, error) {
	return sandbox{h}, nil
}

// CleanupSandbox has nothing to do: a Linux pod's sandbox holds nothing.
func (*Handler) CleanupSandbox(ctx context.Context, stateDir string) error { return nil }

type sandbox struct{ h *Handler }

func (s sandbox) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	return s.h.Create(ctx, req)
}

func (sandbox) Close(ctx context.Context) error { return nil }

// Create mounts the rootfs, creates the libcontainer container and its init
// process (waiting for Start). Every step is undone if a later one fails.
func (h *Handler) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	return h.CreateWith(ctx, req, nil)
}

// CreateWith is Create with prog (if not nil) deciding what the container
// runs: see Program.
func (*Handler) CreateWith(ctx context.Context, req *handler.CreateRequest, prog Program) (_ handler.Container, retErr error) {
	spec := *req.Spec
	if spec.Linux == nil {
		return nil, fmt.Errorf("OCI spec of %s has no linux section: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	if err := checkMountSetattr(&spec, req.ID); err != nil {
		return nil, err
	}
	if err := checkCgroupDriver(&spec, req.ID, req.Config.Linux.SystemdCgroup); err != nil {
		return nil, err
	}
	root := *spec.Root
	if !filepath.IsAbs(root.Path) {
		root.Path = filepath.Join(req.Bundle, root.Path)
	}
	spec.Root = &root

	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if req.Policy != nil {
		r := handler.Rootfs{Mounts: req.Rootfs, Readonly: root.Readonly}
		if err := req.Policy.Rootfs(ctx, &r); err != nil {
			return nil, err
		}
		root.Readonly = r.Readonly
	}
	var mounted *rootfs.Mounted
	if len(req.Rootfs) > 0 {
		// Recorded first: a crash between the mount and the end leaves a
		// record Cleanup unmounts from.
		if err := writeRootfsRecord(req.StateDir, req.ID, filepath.Clean(root.Path)); err != nil {
			return nil, err
		}
		undo = append(undo, func() { _ = removeRootfsRecord(req.StateDir, req.ID) })
		m, err := rootfs.Mount(req.Rootfs, root.Path)
		if err != nil {
			return nil, err
		}
		mounted = m
		undo = append(undo, func() { _ = m.Unmount() })
	} else if err := rootfs.Check(root.Path); err != nil {
		return nil, err
	}
	if prog != nil {
		undo = append(undo, func() { _ = prog.Release(context.WithoutCancel(ctx)) })
		if err := prog.Prepare(ctx, req, &spec, root.Path); err != nil {
			return nil, err
		}
	}

	// To join a user namespace by path (a pod's), specconv forks a child
	// that reads the namespace's mappings and waits for it itself: keep the
	// orphan reaper's hands off that child.
	own := reaper.Spawn()
	lcfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       req.ID,
		UseSystemdCgroup: req.Config.Linux.SystemdCgroup,
		NoPivotRoot:      req.Config.Linux.NoPivotRoot,
		Spec:             &spec,
	})
	own(0)
	if err != nil {
		return nil, fmt.Errorf("OCI spec of %s: %w: %w", req.ID, err, errdefs.ErrInvalidArgument)
	}
	setBundleLabel(lcfg, req.Bundle)
	lcRoot := stateRoot(req.StateDir)
	if err := os.MkdirAll(lcRoot, 0o700); err != nil {
		return nil, err
	}
	lc, err := libcontainer.Create(lcRoot, req.ID, lcfg)
	switch {
	case errors.Is(err, libcontainer.ErrExist):
		return nil, fmt.Errorf("container %s: %w", req.ID, errdefs.ErrAlreadyExists)
	case errors.Is(err, libcontainer.ErrInvalidID):
		return nil, fmt.Errorf("container id %q: %w", req.ID, errdefs.ErrInvalidArgument)
	case err != nil:
		return nil, fmt.Errorf("creating container %s: %w", req.ID, err)
	}
	undo = append(undo, func() { _ = lc.Destroy() })

	lp, err := newProcess(spec.Process)
	if err != nil {
		return nil, err
	}
	lp.Init = true
	c := &container{id: req.ID, stateDir: req.StateDir, spec: &spec, lc: lc, rootfs: mounted, prog: prog}
	c.init = newProc(c, "", lp, req.Stdio)
	if err := c.init.launch(ctx, lc.Start); err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = lc.Signal(os.Kill); <-c.init.done })

	cg, err := cgroups.ForPid(c.init.Pid())
	if err != nil {
		// Stats and OOM events are lost, the container still works.
		logging.L(ctx).Warn("container cgroup unavailable", "id", req.ID, "error", err)
	} else {
		c.cg = cg
		if c.oom, err = cg.WatchOOM(); err != nil {
			logging.L(ctx).Warn("OOM events unavailable", "id", req.ID, "error", err)
		}
	}
	// OOM's channel closes once the init is reaped, every kill sent.
	go func() { <-c.init.done; c.oom.Stop() }()
	return c, nil
}
