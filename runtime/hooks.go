package runtime

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/handler"
)

// annImageName is the image a CRI container was made from.
const annImageName = "io.kubernetes.cri.image-name"

// imageTimeout bounds the read of a container's record for its image.
// containerd answers it from its metadata store in about a millisecond;
// one that does not answer within this leaves the image unknown to the
// hooks (null in their events) instead of holding up the create.
const imageTimeout = time.Second

// HookOptions configure the hook engine of every sandbox.
type HookOptions struct {
	// CacheDir is where compiled modules are shared (hooks.DefaultCacheDir
	// in the shim; empty keeps them in memory).
	CacheDir string
	// Observe is told of every hook call (for metrics).
	Observe func(hooks.Call)
	// ImageOf returns the image name containerd recorded for container id
	// in namespace ("" when the record names none). The shim reads it from
	// containerd; nil leaves only the CRI's annotation. It is asked once
	// per container, and only in sandboxes with hooks.
	ImageOf func(ctx context.Context, namespace, id string) (string, error)
}

// openHooks starts loading the sandbox's hook chain from its config, in
// the background: the sandbox's setup goes on, and the first ask at a point
// waits for the modules of that point. A module that fails to load does not
// stop the shim: its calls get its on_error outcome (fail closed by
// default), so the failure reaches the user at the first step the hook
// guards.
func (s *Sandbox) openHooks(ctx context.Context, opts HookOptions) error {
	if len(s.Config.Hooks) == 0 {
		return nil
	}
	e, err := hooks.Start(ctx, s.Config.Hooks, hooks.Options{
		CacheDir:           opts.CacheDir,
		TolerateLoadErrors: true,
		Observe:            opts.Observe,
	})
	if err != nil {
		return fmt.Errorf("loading the hooks of sandbox %s: %w", s.ID, err)
	}
	s.engine.Store(e)
	s.readImage = opts.ImageOf
	return nil
}

// closeHooks tells the chain the sandbox is gone (sandbox.delete, audit)
// and releases the engine.
func (s *Sandbox) closeHooks(ctx context.Context) {
	e := s.engine.Load()
	if e == nil {
		return
	}
	if s.admitted {
		_, _ = s.ask(ctx, &hooks.SandboxDeleteEvent{Sandbox: s.hookSandbox(s.annotations)})
	}
	s.engine.Store(nil)
	// A call that took the engine before the Store ends first, or fails.
	if err := e.Close(ctx); err != nil {
		logging.L(ctx).Warn("closing hook engine", "error", err)
	}
}

func (s *Sandbox) hookSandbox(annotations map[string]string) hooks.Sandbox {
	return hooks.Sandbox{ID: s.ID, Namespace: s.rec.Namespace, Handler: s.Handler.Name(), Annotations: annotations}
}

// ask runs the chain at ev's point; a denial is the returned error (an
// errdefs.ErrPermissionDenied naming hook and reason). When a hook patched
// the event, ev holds the patched event on return.
func (s *Sandbox) ask(ctx context.Context, ev hooks.Event) (bool, error) {
	if s == nil {
		return false, nil
	}
	e := s.engine.Load()
	if e == nil || len(e.Hooks(ev.Point())) == 0 {
		return false, nil
	}
	out, err := e.Run(ctx, ev.Point(), ev)
	if err != nil {
		return false, err
	}
	if err := out.Err(); err != nil {
		return false, err
	}
	if err := out.Decode(ev); err != nil {
		return false, err
	}
	return out.Patched(), nil
}

// admitSandbox asks sandbox.create; a patch may change the sandbox's
// handler and the annotations (then in spec).
func (m *Manager) admitSandbox(ctx context.Context, s *Sandbox, spec *specs.Spec) error {
	ev := &hooks.SandboxCreateEvent{Sandbox: s.hookSandbox(spec.Annotations)}
	patched, err := s.ask(ctx, ev)
	if err != nil || !patched {
		s.admitted = err == nil
		s.annotations = maps.Clone(spec.Annotations)
		return err
	}
	if name := ev.Sandbox.Handler; name != s.Handler.Name() {
		if !vocab.IsHandler(name) {
			return fmt.Errorf("hook chose unknown handler %q: %w", name, errdefs.ErrInvalidArgument)
		}
		h, ok := m.handlers[name]
		if !ok {
			return fmt.Errorf("hook chose handler %q, which is not available in this build: %w", name, errdefs.ErrInvalidArgument)
		}
		s.Handler = h
		s.mu.Lock()
		s.rec.Handler = name
		s.mu.Unlock()
	}
	spec.Annotations = ev.Sandbox.Annotations
	s.admitted = true
	s.annotations = maps.Clone(spec.Annotations)
	return nil
}

// admitContainer asks, in order, container.create (the whole spec),
// container.mount (each mount), container.cgroups (resources) and
// container.start (the init process: its env and user are fixed when the
// container is created). Patches land in req.Spec. container.rootfs is
// asked later, by the handler, when it attaches the root filesystem
// (policy.Rootfs).
//
// Whenever a later point's changing hooks patch the container, the
// checking hooks of container.create are asked again with the spec as it
// now stands (recheckCreate): they approved the whole spec, and a patch of
// its user, mount options, resources or root must not undo that unseen.
func (s *Sandbox) admitContainer(ctx context.Context, req *handler.CreateRequest, v hookView) error {
	if s == nil || s.engine.Load() == nil {
		return nil
	}
	sb, ctr := v.sandbox, v.container

	create := &hooks.ContainerCreateEvent{Sandbox: sb, Container: ctr, Spec: req.Spec}
	if _, err := s.ask(ctx, create); err != nil {
		return err
	}
	if create.Spec == nil || create.Spec.Process == nil || create.Spec.Root == nil {
		return fmt.Errorf("hooks left container %s without a spec, process or root: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	spec := create.Spec
	req.Spec = spec

	for i, m := range spec.Mounts {
		ev := &hooks.ContainerMountEvent{Sandbox: sb, Container: ctr, Mount: hooks.Mount{
			Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options}}
		patched, err := s.ask(ctx, ev)
		if err != nil {
			return err
		}
		spec.Mounts[i].Options = ev.Mount.Options
		if patched {
			if err := s.recheckCreate(ctx, v, spec, hooks.ContainerMount); err != nil {
				return err
			}
		}
	}

	if spec.Linux != nil {
		ev := &hooks.ContainerCgroupsEvent{Sandbox: sb, Container: ctr, CgroupsPath: spec.Linux.CgroupsPath, Resources: spec.Linux.Resources}
		patched, err := s.ask(ctx, ev)
		if err != nil {
			return err
		}
		spec.Linux.Resources = ev.Resources
		if patched {
			if err := s.recheckCreate(ctx, v, spec, hooks.ContainerCgroups); err != nil {
				return err
			}
		}
	}

	start := &hooks.ContainerStartEvent{Sandbox: sb, Container: ctr, Process: hookProcess(spec.Process)}
	patched, err := s.ask(ctx, start)
	if err != nil {
		return err
	}
	applyProcess(spec.Process, start.Process)
	if patched {
		return s.recheckCreate(ctx, v, spec, hooks.ContainerStart)
	}
	return nil
}

// recheckCreate asks the checking hooks of container.create about spec,
// the container's spec as a later point's changing hooks (after) left it;
// a denial is the returned error, naming both points.
func (s *Sandbox) recheckCreate(ctx context.Context, v hookView, spec *specs.Spec, after hooks.Point) error {
	e := s.engine.Load()
	if e == nil || !e.Checks(hooks.ContainerCreate) {
		return nil
	}
	ev := &hooks.ContainerCreateEvent{Sandbox: v.sandbox, Container: v.container, Spec: spec}
	out, err := e.Recheck(ctx, hooks.ContainerCreate, ev, after)
	if err != nil {
		return err
	}
	return out.Err()
}

// admitExec asks process.exec; a patch may change the env and user.
func (s *Sandbox) admitExec(ctx context.Context, v hookView, execID string, p *specs.Process) error {
	if s == nil || s.engine.Load() == nil {
		return nil
	}
	ev := &hooks.ProcessExecEvent{Sandbox: v.sandbox, Container: v.container, ExecID: execID, Process: hookProcess(p)}
	if _, err := s.ask(ctx, ev); err != nil {
		return err
	}
	applyProcess(p, ev.Process)
	return nil
}

// admitUpdate asks container.update. Nothing of the update may change,
// but an enforcing hook's denial refuses it (an errdefs.ErrPermissionDenied
// naming hook and reason): limits are part of what a policy admitted at
// container.create and container.cgroups, and an update must not undo that
// unseen.
func (s *Sandbox) admitUpdate(ctx context.Context, v hookView, res *specs.LinuxResources) error {
	if s == nil || s.engine.Load() == nil {
		return nil
	}
	ev := &hooks.ContainerUpdateEvent{Sandbox: v.sandbox, Container: v.container, Resources: res}
	_, err := s.ask(ctx, ev)
	return err
}

// auditDelete asks container.delete (audit).
func (s *Sandbox) auditDelete(ctx context.Context, v hookView, e handler.Exit) {
	if s == nil || s.engine.Load() == nil {
		return
	}
	ev := &hooks.ContainerDeleteEvent{Sandbox: v.sandbox, Container: v.container,
		Status: hooks.ExitStatus{ExitCode: uint32(e.Status), ExitedAt: e.At}}
	if _, err := s.ask(ctx, ev); err != nil {
		logging.L(ctx).Warn("hook objected to a delete (audit)", "id", v.container.ID, "error", err)
	}
}

// hookView is how the hooks' events name a container and its pod: fixed
// when the container is created, and the same in every event about it,
// from container.create to container.delete.
type hookView struct {
	sandbox   hooks.Sandbox // the handler running the container, and its spec's annotations
	container hooks.Container
}

// hookView returns container req, run by the handler called handlerName,
// as the hooks' events name it. In a sandbox without hooks nothing is
// looked up.
func (s *Sandbox) hookView(ctx context.Context, req *handler.CreateRequest, handlerName string) hookView {
	if s == nil || s.engine.Load() == nil {
		return hookView{container: hooks.Container{ID: req.ID}}
	}
	sb := s.hookSandbox(maps.Clone(req.Spec.Annotations))
	sb.Handler = handlerName
	return hookView{sandbox: sb, container: hooks.Container{ID: req.ID, Image: hooks.NullString(s.imageOf(ctx, req))}}
}

// imageOf returns the name of the image container req is made from: the
// one containerd recorded for the container, which every client that
// creates a container from an image sets (ctr, nerdctl, containerd's Go
// client); else the CRI's annotation (the CRI keeps the image in its own
// metadata and leaves the record's empty); else "", unknown (a root
// filesystem given as a directory: ctr run --rootfs), which events carry
// as null. A record that cannot be read within imageTimeout counts as
// naming none, and is logged.
func (s *Sandbox) imageOf(ctx context.Context, req *handler.CreateRequest) string {
	if s.readImage != nil {
		lctx, cancel := context.WithTimeout(ctx, imageTimeout)
		name, err := s.readImage(lctx, req.Namespace, req.ID)
		cancel()
		switch {
		case err != nil:
			logging.L(ctx).Warn("cannot read the container's record: its image is unknown to hooks unless the CRI named it",
				"id", req.ID, "error", err)
		case name != "":
			return name
		}
	}
	return req.Spec.Annotations[annImageName]
}

// policy is the handler.Policy of a sandbox, or of one container of it:
// it asks the sandbox's hook chain at the steps handlers take themselves.
type policy struct {
	s         *Sandbox
	sandbox   hooks.Sandbox
	container hooks.Container // zero for the sandbox's own steps
	spec      *specs.Spec     // the container's spec as admitted; nil for the sandbox's own steps
}

// containerPolicy is the Policy a handler asks about the container v
// names, whose spec admitContainer admitted.
func (s *Sandbox) containerPolicy(v hookView, spec *specs.Spec) *policy {
	return &policy{s: s, sandbox: v.sandbox, container: v.container, spec: spec}
}

// VM asks sandbox.vm. A patched shape is checked against handler.VM's
// limits: a hook cannot give a VM more than the VMM allows, or none.
func (p *policy) VM(ctx context.Context, vm *handler.VM) error {
	ev := &hooks.SandboxVMEvent{Sandbox: p.sandbox, VM: hooks.VM{
		Hypervisor: vm.Hypervisor, VCPUs: vm.VCPUs, MemoryMiB: vm.MemoryMiB, KernelParams: vm.KernelParams}}
	for _, d := range vm.Devices {
		ev.VM.Devices = append(ev.VM.Devices, hooks.Device{Type: d.Type, ID: d.ID, Path: d.Path})
	}
	patched, err := p.s.ask(ctx, ev)
	if err != nil || !patched {
		return err
	}
	got := handler.VM{Hypervisor: vm.Hypervisor, VCPUs: ev.VM.VCPUs, MemoryMiB: ev.VM.MemoryMiB,
		KernelParams: ev.VM.KernelParams, Devices: vm.Devices}
	if err := got.Check(); err != nil {
		return fmt.Errorf("hooks at %s gave sandbox %s a VM out of limits: %w", hooks.SandboxVM, p.sandbox.ID, err)
	}
	*vm = got
	return nil
}

// Network asks sandbox.network. What the hooks left is taken as a subset
// of what was found (handler.Network.Subset): a patch can only remove.
func (p *policy) Network(ctx context.Context, n *handler.Network) error {
	ev := &hooks.SandboxNetworkEvent{Sandbox: p.sandbox, Netns: n.Netns,
		Interfaces: []hooks.Interface{}, Routes: []hooks.Route{}}
	for _, in := range n.Interfaces {
		ev.Interfaces = append(ev.Interfaces, hooks.Interface{Name: in.Name, MAC: in.MAC, MTU: in.MTU,
			Addresses: append(hooks.List{}, in.Addresses...)})
	}
	for _, r := range n.Routes {
		ev.Routes = append(ev.Routes, hooks.Route{Destination: r.Destination, Gateway: r.Gateway, Interface: r.Interface})
	}
	patched, err := p.s.ask(ctx, ev)
	if err != nil || !patched {
		return err
	}
	got := handler.Network{Netns: n.Netns}
	for _, in := range ev.Interfaces {
		got.Interfaces = append(got.Interfaces, handler.Interface{Name: in.Name, Addresses: in.Addresses})
	}
	for _, r := range ev.Routes {
		got.Routes = append(got.Routes, handler.Route{Destination: r.Destination, Gateway: r.Gateway, Interface: r.Interface})
	}
	*n = n.Subset(&got)
	return nil
}

// Rootfs asks container.rootfs. When its changing hooks patched it,
// container.create's checking hooks are asked again with the spec's root
// as the container will now have it.
func (p *policy) Rootfs(ctx context.Context, r *handler.Rootfs) error {
	ev := &hooks.ContainerRootfsEvent{Sandbox: p.sandbox, Container: p.container, Mounts: rootfsMounts(r.Mounts), Readonly: r.Readonly}
	patched, err := p.s.ask(ctx, ev)
	if err != nil {
		return err
	}
	if patched && p.spec != nil && p.spec.Root != nil {
		spec := *p.spec // the handler's spec is not changed here
		root := *spec.Root
		root.Readonly = ev.Readonly
		spec.Root = &root
		v := hookView{sandbox: p.sandbox, container: p.container}
		if err := p.s.recheckCreate(ctx, v, &spec, hooks.ContainerRootfs); err != nil {
			return err
		}
	}
	r.Readonly = ev.Readonly
	return nil
}

func rootfsMounts(ms []mount.Mount) []hooks.RootfsMount {
	out := make([]hooks.RootfsMount, 0, len(ms))
	for _, m := range ms {
		out = append(out, hooks.RootfsMount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	return out
}

func hookProcess(p *specs.Process) hooks.Process {
	return hooks.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, Terminal: p.Terminal,
		User: hooks.User{UID: p.User.UID, GID: p.User.GID, AdditionalGIDs: p.User.AdditionalGids, Username: p.User.Username},
	}
}

// applyProcess takes what a hook may change of a process: env and user.
func applyProcess(p *specs.Process, h hooks.Process) {
	p.Env = h.Env
	p.User = specs.User{UID: h.User.UID, GID: h.User.GID, AdditionalGids: h.User.AdditionalGIDs, Username: h.User.Username}
}
