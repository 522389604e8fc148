package agent

import (
	"context"
	"errors"
	"net"

	"github.com/containerd/ttrpc"

	"github.com/huskrt/husk/agent/api"
)

// Serve serves the agent API on agentL and attaches stdio streams from
// streamL until ctx ends or a listener fails; it closes both listeners.
func (s *Service) Serve(ctx context.Context, agentL, streamL net.Listener) error {
	srv, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	api.RegisterAgentService(srv, s)
	errc := make(chan error, 2)
	go func() { errc <- s.streams.serve(ctx, streamL) }()
	go func() {
		err := srv.Serve(ctx, agentL)
		if errors.Is(err, ttrpc.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	_ = srv.Close()
	_ = streamL.Close()
	_ = agentL.Close()
	s.streams.close()
	return err
}
