package shim

import (
	"context"
	"errors"
	"sync"

	"github.com/huskrt/husk/internal/containerdapi"
)

// records reads containers' records from containerd, for the image names
// the hooks' events carry (runtime.HookOptions.ImageOf). It connects at
// the first read, which only a pod with hooks makes, and keeps the
// connection for the shim's life: one read then costs a round trip to
// containerd's metadata store.
type records struct {
	// address is containerd's gRPC address (the shim's -address), "" when
	// unknown; read at the first lookup.
	address func() string

	mu      sync.Mutex
	clients map[string]*containerdapi.Client // by namespace; guarded by mu
	closed  bool                             // guarded by mu
}

// ImageOf returns the image name containerd recorded for container id of
// namespace, "" when the record names none.
func (r *records) ImageOf(ctx context.Context, namespace, id string) (string, error) {
	c, err := r.client(namespace)
	if err != nil {
		return "", err
	}
	return c.ImageOf(ctx, id)
}

func (r *records) client(namespace string) (*containerdapi.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("the shim is shutting down")
	}
	if c, ok := r.clients[namespace]; ok {
		return c, nil
	}
	c, err := containerdapi.Dial(r.address(), namespace)
	if err != nil {
		return nil, err
	}
	if r.clients == nil {
		r.clients = make(map[string]*containerdapi.Client)
	}
	r.clients[namespace] = c
	return c, nil
}

// close closes the connections; later reads fail.
func (r *records) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for _, c := range r.clients {
		errs = append(errs, c.Close())
	}
	r.clients = nil
	return errors.Join(errs...)
}
