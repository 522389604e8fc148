package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/runtime/resource/rootfs"
)

// container is a libcontainer container with husk's bookkeeping.
type container struct {
	id     string
	spec   *specs.Spec
	lc     *libcontainer.Container
	init   *process
	cg     *cgroups.Cgroup // nil if the cgroup could not be loaded
	rootfs *rootfs.Mounted // nil when containerd mounted nothing
	prog   Program         // nil: the spec's process runs as it is

	oom *cgroups.OOMWatch // nil if OOM kills are not watched

	// stateDir is the sandbox's state directory (its rootfs record's).
	stateDir string
}

func (c *container) Init() handler.Process { return c.init }

func (c *container) Exec(ctx context.Context, id string, ps *specs.Process, s handler.Stdio) (handler.Process, error) {
	if ps == nil || len(ps.Args) == 0 {
		return nil, fmt.Errorf("exec %s: process.args is empty: %w", id, errdefs.ErrInvalidArgument)
	}
	if c.prog != nil {
		cp := *ps
		if err := c.prog.PrepareExec(ctx, id, &cp, fmt.Sprintf("/proc/%d/root", c.init.Pid())); err != nil {
			return nil, err
		}
		ps = &cp
	}
	lp, err := newProcess(ps)
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", id, err)
	}
	s.Terminal = ps.Terminal
	return newProc(c, id, lp, s), nil
}

func (c *container) Pause(ctx context.Context) error {
	if err := c.lc.Pause(); err != nil {
		return fmt.Errorf("pausing %s: %w", c.id, err)
	}
	return nil
}

func (c *container) Resume(ctx context.Context) error {
	if err := c.lc.Resume(); err != nil {
		return fmt.Errorf("resuming %s: %w", c.id, err)
	}
	return nil
}

// Update merges res into the container's cgroup limits: only what res sets
// changes, as with `runc update`.
func (c *container) Update(ctx context.Context, res *specs.LinuxResources) error {
	if res == nil {
		return fmt.Errorf("update %s: no resources given: %w", c.id, errdefs.ErrInvalidArgument)
	}
	spec := *c.spec
	linux := *spec.Linux
	linux.Resources = res
	spec.Linux = &linux
	want, err := specconv.CreateCgroupConfig(&specconv.CreateOpts{CgroupName: c.id, Spec: &spec}, nil)
	if err != nil {
		return fmt.Errorf("update %s: %v: %w", c.id, err, errdefs.ErrInvalidArgument)
	}
	cfg := c.lc.Config()
	mergeResources(cfg.Cgroups.Resources, want.Resources)
	if err := c.lc.Set(cfg); err != nil {
		return fmt.Errorf("update %s: %w", c.id, err)
	}
	return nil
}

func (c *container) Stats(ctx context.Context) (any, error) {
	if c.cg == nil {
		return nil, fmt.Errorf("container %s has no cgroup to read: %w", c.id, errdefs.ErrNotFound)
	}
	return c.cg.Stats()
}

func (c *container) Pids(ctx context.Context) ([]int, error) {
	pids, err := c.lc.Processes()
	if err != nil {
		return nil, fmt.Errorf("listing processes of %s: %w", c.id, err)
	}
	return pids, nil
}

func (c *container) OOM() <-chan struct{} { return c.oom.C() }

// signalAll sends sig to every process in the container's cgroup.
func (c *container) signalAll(sig syscall.Signal) error {
	pids, err := c.lc.Processes()
	if err != nil {
		return fmt.Errorf("listing processes of %s: %w", c.id, err)
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signalling pid %d of %s: %w", pid, c.id, err)
		}
	}
	if sig == unix.SIGKILL {
		// Thaws a paused container so the kill takes effect (cgroup v1).
		// An init that has just died (ErrProcessDone) needs no thaw.
		if err := c.lc.Signal(sig); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
	}
	return nil
}

// killRest kills what is left of the container once its init has exited,
// when the init shares a PID namespace: only the exit of a namespace's
// first process makes the kernel kill the others. Without it a running exec
// would hold the init's exit back for ever (execs exit first), and
// background processes would outlive their container. The runc shim does
// the same.
func (c *container) killRest(ctx context.Context) {
	// From the spec (the container's, as converted), not lc.Config(),
	// which an Update may be replacing.
	for _, ns := range c.spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return
		}
	}
	// libcontainer signals every process in the cgroup for this case.
	if err := c.lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		logging.L(ctx).Warn("killing the processes left after the init exited", "id", c.id, "error", err)
	}
}

// Delete destroys the container: remaining processes, cgroups, state dir,
// then the rootfs mounts.
func (c *container) Delete(ctx context.Context) error {
	c.oom.Stop()
	var errs []error
	if err := c.lc.Destroy(); err != nil {
		errs = append(errs, fmt.Errorf("destroying %s: %w", c.id, err))
	}
	if c.rootfs != nil {
		if err := c.rootfs.Unmount(); err != nil {
			errs = append(errs, err)
		} else if err := removeRootfsRecord(c.stateDir, c.id); err != nil {
			errs = append(errs, err)
		}
	}
	if c.prog != nil {
		if err := c.prog.Release(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		logging.L(ctx).Error("deleting container", "id", c.id, "error", errors.Join(errs...))
	}
	return errors.Join(errs...)
}
