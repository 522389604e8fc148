package runtime

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/logging"
)

// AnnotationHandler picks the handler for a sandbox, overriding the
// configured default.
const AnnotationHandler = "io.husk.handler"

// HandlerNames are every handler husk knows of, built into this binary or
// not.
var HandlerNames = []string{"linux", "wasm", "virt"}

// Manager chooses a handler for each sandbox among those built in.
type Manager struct {
	handlers map[string]Handler
}

// NewManager returns a Manager offering the given handlers.
func NewManager(hs ...Handler) *Manager {
	m := &Manager{handlers: make(map[string]Handler, len(hs))}
	for _, h := range hs {
		m.handlers[h.Name()] = h
	}
	return m
}

// Select returns the handler for a sandbox: the annotation if present,
// otherwise the configured default. An unknown name is an invalid argument;
// a known one not built into this binary is not implemented.
func (m *Manager) Select(defaultHandler string, annotations map[string]string) (Handler, error) {
	name, source := defaultHandler, "config runtime.default_handler"
	if v, ok := annotations[AnnotationHandler]; ok {
		name, source = v, "annotation "+AnnotationHandler
	}
	if !slices.Contains(HandlerNames, name) {
		return nil, fmt.Errorf("unknown handler %q in %s (want %s): %w",
			name, source, strings.Join(HandlerNames, ", "), errdefs.ErrInvalidArgument)
	}
	h, ok := m.handlers[name]
	if !ok {
		// Not ErrNotImplemented: containerd reads that status from Create
		// as "task API v3 unsupported" and retries with v2.
		return nil, fmt.Errorf("handler %q is not available in this build: %w", name, errdefs.ErrInvalidArgument)
	}
	return h, nil
}

// Create chooses the handler for req, creates the container and returns its
// task, whose init process waits for Start.
func (m *Manager) Create(ctx context.Context, req *CreateRequest, obs Observer) (*Task, error) {
	h, err := m.Select(string(req.Config.Runtime.DefaultHandler), req.Spec.Annotations)
	if err != nil {
		return nil, err
	}
	ctx = logging.With(ctx, "handler", h.Name())
	c, err := h.Create(ctx, req)
	if err != nil {
		return nil, err
	}
	return newTask(context.WithoutCancel(ctx), req.ID, req.Bundle, h.Name(), c, req.Stdio, obs), nil
}
