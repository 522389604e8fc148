package agent

import (
	"context"
	"errors"
	"net"

	"github.com/containerd/ttrpc"

	"github.com/huskrt/husk/agent/api"
)

// Listeners are where the agent serves: its API and the stdio streams,
// each on one or more listeners (vsock ports, a serial session's ports:
// agent/serial).
type Listeners struct {
	Agent, Streams []net.Listener
}

// Serve serves the agent API on agentL and attaches stdio streams from
// streamL until ctx ends or a listener fails; it closes both listeners.
func (s *Service) Serve(ctx context.Context, agentL, streamL net.Listener) error {
	return s.ServeAll(ctx, Listeners{Agent: []net.Listener{agentL}, Streams: []net.Listener{streamL}})
}

// ServeAll is Serve on every listener of ls: one ttrpc server and one
// set of streams take from all of them, so a stream attached on one
// channel can be named by a call on another. It closes every listener.
func (s *Service) ServeAll(ctx context.Context, ls Listeners) error {
	srv, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	api.RegisterAgentService(srv, s)
	n := len(ls.Agent) + len(ls.Streams)
	errc := make(chan error, n)
	for _, l := range ls.Streams {
		go func() { errc <- s.streams.serve(ctx, l) }()
	}
	for _, l := range ls.Agent {
		go func() {
			err := srv.Serve(ctx, l)
			if errors.Is(err, ttrpc.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	_ = srv.Close()
	for _, l := range append(ls.Streams, ls.Agent...) {
		_ = l.Close()
	}
	s.streams.close()
	return err
}
