package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/agent/api"
)

// DefaultCallTimeout is Options.CallTimeout's default.
const DefaultCallTimeout = 10 * time.Second

// closeWait bounds how long Close waits for ttrpc's receive goroutine to
// end once the connection is closed (it ends at once on any real
// connection).
const closeWait = 5 * time.Second

var (
	// ErrBadReply is wrapped by the error of a call whose reply the host
	// cannot use: malformed, out of range, over a bound. The agent is
	// buggy or hostile, which a caller may treat apart from a refusal.
	ErrBadReply = errors.New("bad reply")
	// ErrBroken is wrapped by Broken's answer, and by the error of every
	// call on a connection that can no longer carry calls.
	ErrBroken = errors.New("agent connection broken")
	// ErrClosed is Broken's answer, and every call's error, after Close.
	ErrClosed = errors.New("agent client closed")
)

// Options configure a Client.
type Options struct {
	// CallTimeout bounds every call; WaitProcess and WaitOOM get their own
	// timeout on top. A write to the agent blocked for twice as long breaks
	// the connection. 0 means DefaultCallTimeout.
	CallTimeout time.Duration
}

// Client calls a husk agent over one connection. Its methods may be called
// concurrently.
type Client struct {
	conn    *frameConn
	tc      *ttrpc.Client
	agent   api.AgentService
	timeout time.Duration // Options.CallTimeout

	mu     sync.Mutex
	broken error          // why calls can no longer be made; guarded by mu
	closed bool           // Close was called; guarded by mu
	calls  sync.WaitGroup // one per call in flight; Add guarded by mu, never once closed
}

// New returns a Client calling the agent at the other end of conn, which
// it owns from now on (Close closes it).
func New(conn net.Conn, opts Options) *Client {
	c := &Client{timeout: opts.CallTimeout}
	if c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	// A write stuck for twice a call's timeout means the agent stopped
	// reading: the call that wrote has failed at its own deadline by then,
	// and every later call would queue behind the write.
	c.conn = newFrameConn(conn, 2*c.timeout, func(err error) {
		c.breakConn(fmt.Errorf("%w: %w", ErrBroken, err))
	})
	c.tc = ttrpc.NewClient(c.conn,
		ttrpc.WithUnaryClientInterceptor(c.intercept),
		ttrpc.WithOnClose(c.connEnded))
	c.agent = api.NewAgentClient(c.tc)
	return c
}

// Close closes the connection and returns once no goroutine of the Client
// is left. Calls in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()

	c.tc.Close() // closes conn; calls waiting for a reply or a write fail
	c.calls.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	if err := c.tc.UserOnCloseWait(ctx); err != nil {
		return fmt.Errorf("agent client: ttrpc's receive loop did not end within %v of closing the connection: %w", closeWait, err)
	}
	return nil
}

// Broken returns nil while the connection can carry calls, and otherwise
// why not: an error wrapping ErrBroken (the agent sent what no ttrpc peer
// may, or the connection ended), or ErrClosed after Close.
func (c *Client) Broken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unusableLocked()
}

// Preconditions: c.mu is held.
func (c *Client) unusableLocked() error {
	if c.broken != nil {
		return c.broken
	}
	if c.closed {
		return ErrClosed
	}
	return nil
}

// breakConn records why the connection is broken (the first reason wins)
// and closes it, which ends ttrpc's receive loop and every call in flight.
func (c *Client) breakConn(err error) {
	c.mu.Lock()
	if c.broken == nil && !c.closed {
		c.broken = err
	}
	c.mu.Unlock()
	c.conn.Conn.Close()
}

// connEnded is ttrpc's note that its receive loop ended.
func (c *Client) connEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil && !c.closed {
		c.broken = fmt.Errorf("%w: the connection to the agent ended", ErrBroken)
	}
}

// intercept sees each call below the ttrpc client's decoding of the reply
// envelope, and breaks the connection when the transport failed: anything
// but an answer, the call's own context ending, a request ttrpc refused
// to send or a closed connection (which connEnded records). A write that
// failed, even after the call gave up, is a failure: the frame it left
// half-written leaves nothing after it readable.
func (c *Client) intercept(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, info *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
	err := invoke(ctx, req, resp)
	if err == nil || errors.Is(err, ttrpc.ErrClosed) || isOversizedRequest(err) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return err
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, proto.Error) {
		err = fmt.Errorf("%w: the reply to %s is no ttrpc response: %w", ErrBadReply, info.FullMethod, err)
	}
	c.breakConn(fmt.Errorf("%w: %w", ErrBroken, err))
	return err
}

func isOversizedRequest(err error) bool {
	var o *ttrpc.OversizedMessageErr
	return errors.As(err, &o)
}

// call runs rpc(ctx, req) under the call's deadline, CallTimeout plus
// extra, and turns its error into one the caller can classify. It returns
// at the deadline even when ttrpc is stuck writing the request: the
// goroutine that runs rpc ends when that write does (bounded by the write
// timeout) or when Close closes the connection.
func call[Req, Resp any](ctx context.Context, c *Client, name string, extra time.Duration, rpc func(context.Context, Req) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	c.mu.Lock()
	if err := c.unusableLocked(); err != nil {
		c.mu.Unlock()
		return zero, fmt.Errorf("agent %s: %w", name, err)
	}
	c.calls.Add(1)
	c.mu.Unlock()

	timeout := c.timeout + extra
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	type result struct {
		resp Resp
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer c.calls.Done()
		resp, err := rpc(cctx, req)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-cctx.Done():
		select {
		case r = <-done: // an answer that came with the deadline wins
		default:
			r.err = cctx.Err()
		}
	}
	if r.err == nil {
		return r.resp, nil
	}
	return zero, c.callError(ctx, cctx, name, timeout, r.err)
}

// callError says what went wrong with call name, in errors a caller tells
// apart with errors.Is: a deadline, a refusal from the agent (errdefs), a
// bad reply (ErrBadReply), a broken connection (ErrBroken).
func (c *Client) callError(ctx, cctx context.Context, name string, timeout time.Duration, err error) error {
	if cerr := cctx.Err(); cerr != nil {
		switch {
		case ctx.Err() == nil:
			return fmt.Errorf("agent %s: no reply within the call's deadline of %v: %w", name, timeout, cerr)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("agent %s: no reply before the caller's deadline (earlier than the call's %v): %w", name, timeout, cerr)
		default:
			return fmt.Errorf("agent %s: %w", name, cerr)
		}
	}
	var o *ttrpc.OversizedMessageErr
	if errors.As(err, &o) {
		return fmt.Errorf("agent %s: a request of %d bytes, over ttrpc's limit of %d: %w", name, o.RejectedLength(), o.MaximumLength(), errdefs.ErrInvalidArgument)
	}
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("agent %s: %w", name, agentError(st))
	}
	if errors.Is(err, proto.Error) && c.Broken() == nil {
		// The envelope decoded (intercept saw no error), its payload did not.
		return fmt.Errorf("agent %s: %w: %w", name, ErrBadReply, err)
	}
	if errors.Is(err, ttrpc.ErrClosed) {
		c.breakConn(fmt.Errorf("%w: the connection to the agent ended", ErrBroken))
	}
	if b := c.Broken(); b != nil {
		return fmt.Errorf("agent %s: %w", name, b)
	}
	// Unreachable, by intercept and connEnded; still, an error that fits no
	// class is not a healthy connection.
	c.breakConn(fmt.Errorf("%w: %w", ErrBroken, err))
	return fmt.Errorf("agent %s: %w", name, c.Broken())
}
