package runtime

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/persist"
)

// Sandbox is a pod as one shim serves it: its handler and configuration,
// chosen when its first (sandbox) container is created, and its persisted
// record of containers.
type Sandbox struct {
	ID      string
	Dir     string // state directory
	Config  *config.Config
	Handler handler.Handler

	// engine is the sandbox's hook chain (nil without hooks; atomic: an
	// Update or exec of one container may ask it while the deletion of
	// the last one closes it); admitted says sandbox.create let the
	// sandbox be, so sandbox.delete is due.
	engine   atomic.Pointer[hooks.Engine]
	admitted bool
	// annotations are the sandbox's, as sandbox.create admitted them, for
	// sandbox.delete.
	annotations map[string]string
	// readImage reads a container's image from containerd's record, for
	// the hooks' events (HookOptions.ImageOf); set with engine.
	readImage func(ctx context.Context, namespace, id string) (string, error)

	mu  sync.Mutex      // guards rec
	rec persist.Sandbox // what delete needs after a crash

	// creating counts the creates in progress in this sandbox (once it is
	// in the Manager's map); guarded by the Manager's mu. While there are
	// any, the deletion of its last container leaves the sandbox up.
	creating int

	// partsMu guards parts, the handlers' sandboxes of the pod by handler
	// name (in order of creation), and is held while one is set up: a
	// VM boots once, and the pod's other creates wait for it.
	partsMu sync.Mutex
	parts   []part
}

// part is one handler's sandbox of the pod.
type part struct {
	handler string
	sb      handler.Sandbox
}

// part returns the pod's sandbox of handler h, setting it up if this is
// the pod's first container of h's kind. spec is that container's.
func (s *Sandbox) part(ctx context.Context, h handler.Handler, spec *specs.Spec) (handler.Sandbox, error) {
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	for _, p := range s.parts {
		if p.handler == h.Name() {
			return p.sb, nil
		}
	}
	res, err := SandboxResources(spec.Annotations)
	if err != nil {
		return nil, err
	}
	sb, err := h.NewSandbox(ctx, &handler.SandboxRequest{
		ID:        s.ID,
		Namespace: s.rec.Namespace,
		StateDir:  s.Dir,
		Spec:      spec,
		Resources: res,
		Config:    s.Config,
		Policy:    &policy{s: s, sandbox: s.hookSandbox(spec.Annotations)},
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the %s sandbox of %s: %w", h.Name(), s.ID, err)
	}
	s.parts = append(s.parts, part{handler: h.Name(), sb: sb})
	return sb, nil
}

// closeParts closes the handlers' sandboxes, the last set up first.
func (s *Sandbox) closeParts(ctx context.Context) {
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	for i := len(s.parts) - 1; i >= 0; i-- {
		if err := s.parts[i].sb.Close(ctx); err != nil {
			logging.L(ctx).Error("closing sandbox", "handler", s.parts[i].handler, "error", err)
		}
	}
	s.parts = nil
}

func newSandbox(id, namespace string, cfg *config.Config, h handler.Handler) *Sandbox {
	return &Sandbox{
		ID:      id,
		Dir:     persist.Dir(cfg.Runtime.StateDir, namespace, id),
		Config:  cfg,
		Handler: h,
		rec:     persist.Sandbox{ID: id, Namespace: namespace, Handler: h.Name(), ShimPid: os.Getpid()},
	}
}

// add records a new container of the sandbox, run by handler, on disk, in
// the sandbox's state and in the container's bundle.
func (s *Sandbox) add(id, bundle, handler string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.AddContainer(persist.Container{ID: id, Bundle: bundle, Handler: handler})
	if err := persist.Write(s.Dir, &s.rec); err != nil {
		return fmt.Errorf("persisting sandbox %s: %w", s.ID, err)
	}
	if err := persist.WriteBundleRef(bundle, persist.BundleRef{SandboxID: s.ID, StateDir: s.Dir}); err != nil {
		return fmt.Errorf("writing bundle reference: %w", err)
	}
	return nil
}

// remove forgets a container; it reports whether the sandbox is now empty
// and torn down (hooks closed, pod cgroup released, state directory gone),
// which keep prevents: a create in progress still needs it.
func (s *Sandbox) remove(ctx context.Context, id string, keep bool) (gone bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.RemoveContainer(id)
	if len(s.rec.Containers) == 0 && !keep {
		s.teardownLocked(ctx)
		return true
	}
	if err := persist.Write(s.Dir, &s.rec); err != nil {
		logging.L(ctx).Error("persisting sandbox", "error", err)
	}
	return false
}

// forget removes container id from the sandbox's record, and reports
// whether the sandbox is left empty and should be torn down (never when
// keep): the caller then calls teardownIfEmpty. Otherwise the record is
// persisted.
func (s *Sandbox) forget(ctx context.Context, id string, keep bool) (empty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.RemoveContainer(id)
	if len(s.rec.Containers) == 0 && !keep {
		return true
	}
	if err := persist.Write(s.Dir, &s.rec); err != nil {
		logging.L(ctx).Error("persisting sandbox", "error", err)
	}
	return false
}

// empty reports whether the sandbox has no container left.
func (s *Sandbox) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rec.Containers) == 0
}

// teardownIfEmpty tears the sandbox down if it has no container left,
// and says whether it did.
func (s *Sandbox) teardownIfEmpty(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rec.Containers) > 0 {
		return false
	}
	s.teardownLocked(ctx)
	return true
}

func (s *Sandbox) teardownLocked(ctx context.Context) {
	s.closeParts(ctx)
	s.closeHooks(ctx)
	s.releasePodCgroupLocked(ctx)
	if err := persist.Remove(s.Dir); err != nil {
		logging.L(ctx).Error("removing sandbox state", "error", err)
	}
}

// measure collects what the sandbox's handler parts measure of themselves.
func (s *Sandbox) measure(ctx context.Context) []handler.Measure {
	s.partsMu.Lock()
	parts := append([]part(nil), s.parts...)
	s.partsMu.Unlock()
	var out []handler.Measure
	for _, p := range parts {
		m, ok := p.sb.(handler.Measured)
		if !ok {
			continue
		}
		ms, err := m.Measure(ctx)
		if err != nil {
			logging.L(ctx).Debug("measuring a sandbox", "handler", p.handler, "error", err)
			continue
		}
		out = append(out, ms...)
	}
	return out
}
