package virt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/runtime/handler"
)

// container is a container in the pod's VM.
type container struct {
	sb     *sandbox
	id     string
	serial string // its rootfs disk's
	img    rootfsImage
	init   *process

	oom     chan struct{} // see handler.Container.OOM
	oomOnce sync.Once
	oomMu   sync.Mutex // guards sending on oom against its close
	oomShut bool       // guarded by oomMu
}

// diskSerial is the serial of container id's rootfs disk: at most 20
// bytes, the same for the same container.
func diskSerial(sandboxID, id string) string {
	sum := sha256.Sum256([]byte(sandboxID + "/" + id))
	return "r" + hex.EncodeToString(sum[:])[:19]
}

// createContainer builds the container's rootfs image, attaches it to the
// VM, attaches its stdio and has the agent create it. Every step is undone
// if a later one fails.
func createContainer(ctx context.Context, s *sandbox, req *handler.CreateRequest) (_ *container, retErr error) {
	if req.Spec.Root == nil {
		return nil, fmt.Errorf("container %s has no root: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	readonly := req.Spec.Root.Readonly
	if req.Policy != nil {
		r := handler.Rootfs{Mounts: req.Rootfs, Readonly: readonly}
		if err := req.Policy.Rootfs(ctx, &r); err != nil {
			return nil, err
		}
		readonly = r.Readonly
	}
	spec := *req.Spec
	root := *spec.Root
	root.Readonly = readonly
	spec.Root = &root
	// What the guest cannot run is refused before a volume is copied.
	if err := refuseHostOnly(&spec, req.ID); err != nil {
		return nil, err
	}

	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	mounts, err := s.mountVolumes(ctx, req.ID, spec.Mounts)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.vols.release(req.ID) })
	spec.Mounts = mounts
	guest, err := guestSpec(&spec, s.cfg.id, req.ID)
	if err != nil {
		return nil, err
	}
	img, err := buildRootfs(ctx, s.cfg.cache, req.ID, req.Bundle, req.Rootfs)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = img.remove() })
	c := &container{sb: s, id: req.ID, serial: diskSerial(s.cfg.id, req.ID), img: img, oom: make(chan struct{}, 1)}
	if err := s.vm.AttachDisk(ctx, img.path, true, c.serial); err != nil {
		return nil, s.callErr(fmt.Errorf("attaching %s's root filesystem: %w", req.ID, err))
	}
	undo = append(undo, func() { _ = s.vm.DetachDisk(context.WithoutCancel(ctx), c.serial) })
	st, err := openStreams(ctx, s.vm, req.Stdio)
	if err != nil {
		return nil, s.callErr(err)
	}
	undo = append(undo, st.close)
	c.init = newProcess(s, c, "", st)
	// A create the agent finished after the call gave up must not stay
	// in the guest.
	undo = append(undo, func() { _ = s.cl.DeleteContainer(context.WithoutCancel(ctx), req.ID) })
	pid, err := s.cl.CreateContainer(ctx, client.CreateContainerRequest{
		ContainerID: req.ID,
		Spec:        guest,
		Rootfs:      client.Rootfs{DiskSerial: c.serial, FSType: "erofs", ReadOnly: readonly},
		Stdio:       st.ids,
	})
	if err != nil {
		return nil, s.callErr(err)
	}
	c.init.setPid(pid)
	// The init exists from now on (waiting for Start) and can be killed.
	go c.init.wait()
	return c, nil
}

func (c *container) Init() handler.Process { return c.init }

// Exec prepares a process in the container.
func (c *container) Exec(ctx context.Context, id string, ps *specs.Process, s handler.Stdio) (handler.Process, error) {
	if ps == nil || len(ps.Args) == 0 {
		return nil, fmt.Errorf("exec %s: process.args is empty: %w", id, errdefs.ErrInvalidArgument)
	}
	b, err := json.Marshal(ps)
	if err != nil {
		return nil, err
	}
	s.Terminal = ps.Terminal
	st, err := openStreams(ctx, c.sb.vm, s)
	if err != nil {
		return nil, c.sb.callErr(err)
	}
	if err := c.sb.cl.ExecProcess(ctx, client.ExecProcessRequest{ContainerID: c.id, ExecID: id, Process: b, Stdio: st.ids}); err != nil {
		st.close()
		return nil, c.sb.callErr(err)
	}
	return newProcess(c.sb, c, id, st), nil
}

func (c *container) Pause(ctx context.Context) error {
	return c.sb.callErr(c.sb.cl.PauseContainer(ctx, c.id))
}

func (c *container) Resume(ctx context.Context) error {
	return c.sb.callErr(c.sb.cl.ResumeContainer(ctx, c.id))
}

func (c *container) Update(ctx context.Context, res *specs.LinuxResources) error {
	if res == nil {
		return fmt.Errorf("update %s: no resources given: %w", c.id, errdefs.ErrInvalidArgument)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return c.sb.callErr(c.sb.cl.UpdateContainer(ctx, c.id, b))
}

// Stats returns the container's cgroup metrics in the guest.
func (c *container) Stats(ctx context.Context) (any, error) {
	st, err := c.sb.cl.StatsContainer(ctx, c.id)
	if err != nil {
		return nil, c.sb.callErr(err)
	}
	return st.Metrics, nil
}

// Pids lists the container's processes by their guest pids.
func (c *container) Pids(ctx context.Context) ([]int, error) {
	pids, err := c.sb.cl.ListPids(ctx, c.id)
	if err != nil {
		return nil, c.sb.callErr(err)
	}
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out, nil
}

func (c *container) OOM() <-chan struct{} { return c.oom }

// oomKilled reports an OOM kill, unless the init's exit closed the channel.
func (c *container) oomKilled() {
	c.oomMu.Lock()
	defer c.oomMu.Unlock()
	if c.oomShut {
		return
	}
	select {
	case c.oom <- struct{}{}:
	default: // one pending receive stands for several
	}
}

// initExited closes the OOM channel: every kill up to the exit was sent.
func (c *container) initExited() {
	c.oomOnce.Do(func() {
		c.oomMu.Lock()
		c.oomShut = true
		close(c.oom)
		c.oomMu.Unlock()
	})
}

// Delete removes the container from the guest, then its disk from the VM
// and its image if it was its own. Its volumes' guest copies stay until
// the VM ends (podVolumes.release).
func (c *container) Delete(ctx context.Context) error {
	defer c.sb.forget(c.id)
	defer c.sb.vols.release(c.id)
	var errs []error
	if c.sb.deadErr() == nil {
		if err := c.sb.cl.DeleteContainer(ctx, c.id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("agent: deleting %s: %w", c.id, err))
		}
		if err := c.sb.vm.DetachDisk(ctx, c.serial); err != nil {
			errs = append(errs, fmt.Errorf("detaching %s's root filesystem: %w", c.id, err))
		}
	}
	errs = append(errs, c.img.remove())
	return errors.Join(errs...)
}
