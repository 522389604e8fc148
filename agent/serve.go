package agent

import (
	"context"
	"errors"
	"net"

	"github.com/containerd/ttrpc"

	"github.com/huskrt/husk/agent/api"
)

// Listeners are where the agent serves: its API, the stdio streams,
// port-forward connections (api.ForwardPort) and debug consoles
// (api.DebugConsolePort), each on one or more listeners (vsock ports, a
// serial session's ports: agent/serial). Forward and Console may be
// empty: then nothing is forwarded, no console answered. Console
// connections are refused unless Options.DebugConsole is on.
type Listeners struct {
	Agent, Streams, Forward, Console []net.Listener
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
	// Forwarded connections end with the agent's serving.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	n := len(ls.Agent) + len(ls.Streams) + len(ls.Forward) + len(ls.Console)
	errc := make(chan error, n)
	for _, l := range ls.Streams {
		go func() { errc <- s.streams.serve(ctx, l) }()
	}
	fwd := newForwards()
	for _, l := range ls.Forward {
		go func() { errc <- fwd.serve(fctx, l) }()
	}
	cons := newConsoles(s.opts.DebugConsole, s.opts.DebugShell)
	for _, l := range ls.Console {
		go func() { errc <- cons.serve(fctx, l) }()
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
	for _, l := range append(append(append(ls.Streams, ls.Agent...), ls.Forward...), ls.Console...) {
		_ = l.Close()
	}
	fcancel()
	s.streams.close()
	return err
}
