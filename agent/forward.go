package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
)

// Bounds of port forwarding (api.ForwardPort).
const (
	// forwardHeaderTimeout bounds the wait for a forward connection's
	// header.
	forwardHeaderTimeout = 5 * time.Second
	// forwardDialTimeout bounds each dial of the guest's own server: it
	// is local, so a refusal or an answer comes at once.
	forwardDialTimeout = time.Second
	// maxForwardAddrs bounds the guest's own addresses tried after
	// loopback.
	maxForwardAddrs = 16
	// maxForwards bounds the forwarded connections at once (the host has
	// a lower bound of its own).
	maxForwards = 128
	// forwardGrace is how long a forwarded connection one side has
	// half-closed waits for the other side to finish (api.Relay).
	forwardGrace = 5 * time.Second
)

// forwards serves api.ForwardPort: each connection is joined to a TCP
// connection to its port on the guest, the pod's network namespace (the
// VM's).
type forwards struct {
	// dial connects to port on the guest; tests replace it.
	dial func(ctx context.Context, port uint16) (net.Conn, error)
	sem  chan struct{}
	wg   sync.WaitGroup
}

func newForwards() *forwards {
	return &forwards{dial: dialGuestPort, sem: make(chan struct{}, maxForwards)}
}

// serve accepts forward connections on l until it is closed or ctx ends;
// it returns once every connection it took is closed.
func (f *forwards) serve(ctx context.Context, l net.Listener) error {
	defer f.wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case f.sem <- struct{}{}:
		default:
			logging.L(ctx).Warn("refusing a forward connection: too many", "limit", maxForwards)
			_ = c.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.sem }()
			f.forward(ctx, c)
		}()
	}
}

// forward reads c's header, dials its port and relays until either side
// ends.
func (f *forwards) forward(ctx context.Context, c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(forwardHeaderTimeout))
	port, err := api.ReadForwardHeader(c)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		logging.L(ctx).Warn("refusing a forward connection", "error", err)
		_ = c.Close()
		return
	}
	tc, err := f.dial(ctx, port)
	if err != nil {
		logging.L(ctx).Info("port-forward: nothing answers", "port", port, "error", err)
		_, _ = c.Write([]byte{api.ForwardRefused})
		_ = c.Close()
		return
	}
	if _, err := c.Write([]byte{api.ForwardConnected}); err != nil {
		_ = c.Close()
		_ = tc.Close()
		return
	}
	api.Relay(ctx, c, tc, forwardGrace)
}

// dialGuestPort connects to port on 127.0.0.1, then ::1, then each of
// the guest's own addresses (a server may listen on the pod's IP only),
// the first that answers.
func dialGuestPort(ctx context.Context, port uint16) (net.Conn, error) {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	if ifAddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifAddrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil || pfx.Addr().IsLoopback() || pfx.Addr().IsLinkLocalUnicast() {
				continue
			}
			if len(addrs) >= 2+maxForwardAddrs {
				break
			}
			addrs = append(addrs, pfx.Addr())
		}
	}
	d := net.Dialer{Timeout: forwardDialTimeout}
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.String(), strconv.Itoa(int(port))))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("port %d: %w", port, errors.Join(errs...))
}
