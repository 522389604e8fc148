package virt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
)

// Bounds of port forwarding.
const (
	// maxForwards bounds a pod's forwarded connections at once; one more
	// is closed as it comes. Each holds two copy buffers (64 KiB) and, on
	// virtio-serial, one of the session's streams (256 in all).
	maxForwards = 64
	// forwardAnswerTimeout bounds the dial of the agent's forward port
	// and its answer (the agent tries its addresses within a second
	// each).
	forwardAnswerTimeout = 30 * time.Second
	// forwardGrace is how long a connection one side half-closed waits
	// for the other to finish (api.Relay); containerd gives a second.
	forwardGrace = 5 * time.Second
)

// portForwarder carries the TCP connections its listeners accept to the
// same port in the guest: each accepted connection's local port (the port
// the client dialled: loopbackSteer keeps it) is asked of the agent on a
// connection of its own to api.ForwardPort, and the two are relayed.
// This is what makes `crictl port-forward` reach a VM pod: containerd's
// CRI dials localhost:PORT in the pod's network namespace on the host.
type portForwarder struct {
	dial func(ctx context.Context) (net.Conn, error) // to api.ForwardPort
	ctx  context.Context                             // the forwarder's life
	stop context.CancelFunc
	sem  chan struct{} // one token per connection being forwarded
	wg   sync.WaitGroup
	lns  []net.Listener
}

// newPortForwarder serves lns (closed by Close) until Close, forwarding
// at most limit connections at once.
func newPortForwarder(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), lns []net.Listener, limit int) *portForwarder {
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	f := &portForwarder{dial: dial, ctx: fctx, stop: stop, sem: make(chan struct{}, limit), lns: lns}
	for _, l := range lns {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(l)
		}()
	}
	return f
}

// serve accepts on l until it is closed.
func (f *portForwarder) serve(l net.Listener) {
	log := logging.L(f.ctx)
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.ctx.Err() != nil {
				return
			}
			// A transient failure (EMFILE, ECONNABORTED): slow down.
			log.Warn("port-forward: accepting", "error", err)
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case f.sem <- struct{}{}:
		default:
			log.Warn("port-forward: refusing a connection: too many", "limit", cap(f.sem))
			_ = c.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.sem }()
			if err := f.forward(c); err != nil {
				log.Info("port-forward", "local", c.LocalAddr().String(), "error", err)
			}
		}()
	}
}

// forward carries c to the guest's server on c's local port.
func (f *portForwarder) forward(c net.Conn) error {
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok || ta.Port <= 0 || ta.Port > 65535 {
		_ = c.Close()
		return fmt.Errorf("a connection to %v: not a TCP port", c.LocalAddr())
	}
	port := uint16(ta.Port)
	g, err := f.open(port)
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("port %d: %w", port, err)
	}
	api.Relay(f.ctx, c, g, forwardGrace)
	return nil
}

// open asks the agent for a connection to port in the guest and returns
// it once the agent says it is connected. The agent's answer is one byte;
// a connection that gives anything else, or nothing in time, is closed.
func (f *portForwarder) open(port uint16) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(f.ctx, forwardAnswerTimeout)
	defer cancel()
	g, err := f.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dialling the agent: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = g.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = g.SetDeadline(time.Now()) })
	err = api.WriteForwardHeader(g, port)
	var answer [1]byte
	if err == nil {
		_, err = io.ReadFull(g, answer[:])
	}
	stop()
	if err == nil && answer[0] != api.ForwardConnected {
		err = fmt.Errorf("nothing in the guest accepts a connection to it")
		if answer[0] != api.ForwardRefused {
			err = fmt.Errorf("the agent answered %#x, not a forward answer", answer[0])
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = g.Close()
		return nil, err
	}
	_ = g.SetDeadline(time.Time{})
	return g, nil
}

// Close stops accepting, closes every forwarded connection and returns
// once none is left.
func (f *portForwarder) Close() {
	if f == nil {
		return
	}
	f.stop()
	for _, l := range f.lns {
		_ = l.Close()
	}
	f.wg.Wait()
}
