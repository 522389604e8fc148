package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/handler"
)

// AnnotationHandler picks the handler for a sandbox, overriding the
// configured default.
const AnnotationHandler = "io.husk.handler"

// Manager chooses a handler for each sandbox among those built in, and
// keeps the sandboxes this shim serves.
type Manager struct {
	handlers map[string]handler.Handler
	// HookOptions apply to every sandbox's hook engine; set before use.
	HookOptions HookOptions

	mu        sync.Mutex
	sandboxes map[string]*Sandbox // by sandbox id; guarded by mu
	// tearing holds the sandboxes being torn down (their sandbox.delete
	// hooks asked, their VMs stopped) outside mu, by id; each channel is
	// closed when its teardown ends. guarded by mu.
	tearing map[string]chan struct{}
}

// NewManager returns a Manager offering the given handlers.
func NewManager(hs ...handler.Handler) *Manager {
	m := &Manager{handlers: make(map[string]handler.Handler, len(hs)), sandboxes: make(map[string]*Sandbox),
		tearing: make(map[string]chan struct{})}
	for _, h := range hs {
		m.handlers[h.Name()] = h
	}
	return m
}

// Select returns the handler for a sandbox: the annotation if present,
// otherwise the configured default. An unknown name is an invalid argument;
// a known one not built into this binary is not implemented.
func (m *Manager) Select(defaultHandler string, annotations map[string]string) (handler.Handler, error) {
	name, source := defaultHandler, "config runtime.default_handler"
	if v, ok := annotations[AnnotationHandler]; ok {
		name, source = v, "annotation "+AnnotationHandler
	}
	if !vocab.IsHandler(name) {
		return nil, fmt.Errorf("unknown handler %q in %s (want %s): %w",
			name, source, strings.Join(vocab.Handlers(), ", "), errdefs.ErrInvalidArgument)
	}
	h, ok := m.handlers[name]
	if !ok {
		// Not ErrNotImplemented: containerd reads that status from Create
		// as "task API v3 unsupported" and retries with v2.
		return nil, fmt.Errorf("handler %q is not available in this build: %w", name, errdefs.ErrInvalidArgument)
	}
	return h, nil
}

// Handler returns the built-in handler called name.
func (m *Manager) Handler(name string) (handler.Handler, bool) {
	h, ok := m.handlers[name]
	return h, ok
}

// Create creates a container and returns its task, whose init process waits
// for Start. A pod's sandbox container chooses the handler and config for
// the whole pod; its other containers use them.
func (m *Manager) Create(ctx context.Context, req *handler.CreateRequest, obs Observer) (_ *Task, retErr error) {
	pod := PodOf(req.ID, req.Spec.Annotations)
	// The sandbox is named here, once, for every record of the create (the
	// Sandbox's own records do not add it again).
	ctx = logging.With(ctx, "sandbox", pod.SandboxID)
	sb, ok, err := m.lookupForCreate(ctx, pod.SandboxID)
	if err != nil {
		return nil, err
	}
	if ok {
		// While this create runs, deleting the sandbox's last container
		// leaves the sandbox up; if this create fails and nothing is left,
		// it takes the sandbox down itself.
		defer func() {
			m.mu.Lock()
			sb.creating--
			if retErr != nil && sb.creating == 0 && m.sandboxes[sb.ID] == sb && sb.empty() {
				m.teardown(ctx, sb) // unlocks mu
				return
			}
			m.mu.Unlock()
		}()
	}
	switch {
	case !ok && !pod.IsSandbox:
		return nil, fmt.Errorf("container %s belongs to sandbox %s, which this shim does not serve: %w",
			req.ID, pod.SandboxID, errdefs.ErrFailedPrecondition)
	case !ok:
		h, err := m.Select(string(req.Config.Runtime.DefaultHandler), req.Spec.Annotations)
		if err != nil {
			return nil, err
		}
		sb = newSandbox(pod.SandboxID, req.Namespace, req.Config, h)
		if err := sb.openHooks(ctx, m.HookOptions); err != nil {
			return nil, err
		}
		if err := m.admitSandbox(ctx, sb, req.Spec); err != nil {
			sb.closeHooks(ctx)
			return nil, err
		}
		if pod.CRI {
			if err := sb.setupPodCgroup(ctx, req.Spec, req.Config.Runtime.SandboxCgroupOnly); err != nil {
				// Nothing is recorded yet: release the hooks (the chain
				// admitted the sandbox, so it hears sandbox.delete).
				sb.closeHooks(ctx)
				return nil, err
			}
		}
	case pod.IsSandbox:
		return nil, fmt.Errorf("sandbox %s: %w", pod.SandboxID, errdefs.ErrAlreadyExists)
	}
	req.SandboxID, req.StateDir, req.Config = sb.ID, sb.Dir, sb.Config
	req.PodSandbox = pod.CRI && pod.IsSandbox
	ch, err := m.containerHandler(sb.Handler, pod, req.Spec.Annotations)
	if err != nil {
		if !ok {
			sb.remove(ctx, req.ID, false)
		}
		return nil, err
	}
	// The handler is named once it is known: a smart create's handler
	// (wasm) decides whether the container is Wasm or native, and its
	// kind is the handler the task is labelled with.
	base := ctx
	if !ch.smart {
		ctx = logging.With(ctx, "handler", ch.h.Name())
	}

	// Record first: a crash between here and the end leaves a record that
	// delete can clean up from, never resources nobody knows of.
	if err := sb.add(req.ID, req.Bundle, ch.h.Name()); err != nil {
		sb.remove(ctx, req.ID, ok)
		return nil, err
	}
	defer func() {
		if retErr != nil {
			sb.remove(ctx, req.ID, ok)
		}
	}()
	// The pod's sandbox of this handler (its VM) first: sandbox steps come
	// before the container's.
	part, err := sb.part(ctx, ch.h, req.Spec)
	if err != nil {
		return nil, err
	}
	hv := sb.hookView(ctx, req, ch.h.Name())
	if err := sb.admitContainer(ctx, req, hv); err != nil {
		return nil, err
	}
	req.Policy = sb.containerPolicy(hv, req.Spec)
	c, kind, err := ch.create(ctx, part, req)
	if err != nil {
		return nil, err
	}
	if !ok {
		m.mu.Lock()
		m.sandboxes[sb.ID] = sb
		m.mu.Unlock()
	}
	tctx := logging.With(context.WithoutCancel(base), "handler", kind)
	logging.L(tctx).Debug("container created")
	t := newTask(tctx, req.ID, req.Bundle, kind, c, req.Stdio, obs)
	t.SandboxID, t.SandboxDir, t.sb, t.hooks = sb.ID, sb.Dir, sb, hv
	return t, nil
}

// lookupForCreate returns the served sandbox id, counting the create in
// (ok), or ok false when none is served. A sandbox of that id being torn
// down is waited for first: its state directory is the one a new sandbox
// of the same id would use.
func (m *Manager) lookupForCreate(ctx context.Context, id string) (sb *Sandbox, ok bool, err error) {
	m.mu.Lock()
	for {
		done, tearing := m.tearing[id]
		if !tearing {
			break
		}
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("sandbox %s is being torn down: %w", id, ctx.Err())
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	sb, ok = m.sandboxes[id]
	if ok {
		sb.creating++
	}
	return sb, ok, nil
}

// Deleted forgets a deleted task; the last container of a sandbox takes the
// sandbox (and its state directory) with it, and Deleted then says so. The
// teardown (sandbox.delete's hooks, the handler's sandbox, a VM) runs
// without mu held: a slow hook or VM holds up only this sandbox, not the
// other sandboxes' creates and deletes.
func (m *Manager) Deleted(ctx context.Context, t *Task) (sandboxGone bool) {
	ctx = logging.With(ctx, "sandbox", t.SandboxID)
	m.mu.Lock()
	sb, ok := m.sandboxes[t.SandboxID]
	if !ok || !sb.forget(ctx, t.ID, sb.creating > 0) {
		m.mu.Unlock()
		return false
	}
	m.teardown(ctx, sb)
	return true
}

// teardown takes the empty sandbox sb out of those served, unlocks mu and
// tears sb down; a create of its id waits meanwhile (lookupForCreate).
// Once out of the map no create finds sb, so none can add to it.
//
// Preconditions: mu is held; sb is served, empty, and no create of it is
// in flight.
func (m *Manager) teardown(ctx context.Context, sb *Sandbox) {
	delete(m.sandboxes, sb.ID)
	done := make(chan struct{})
	m.tearing[sb.ID] = done
	m.mu.Unlock()

	sb.teardownIfEmpty(ctx)

	m.mu.Lock()
	delete(m.tearing, sb.ID)
	m.mu.Unlock()
	close(done)
}

// Measure returns what each served sandbox's handler parts measure of
// themselves (a VM's counters), by sandbox id.
func (m *Manager) Measure(ctx context.Context) map[string][]handler.Measure {
	m.mu.Lock()
	sbs := make([]*Sandbox, 0, len(m.sandboxes))
	for _, sb := range m.sandboxes {
		sbs = append(sbs, sb)
	}
	m.mu.Unlock()
	out := make(map[string][]handler.Measure, len(sbs))
	for _, sb := range sbs {
		if ms := sb.measure(logging.With(ctx, "sandbox", sb.ID)); len(ms) > 0 {
			out[sb.ID] = ms
		}
	}
	return out
}
