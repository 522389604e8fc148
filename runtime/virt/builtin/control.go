//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// errChannelClosed is the control channel's end from the VMM's side: it
// exited (or closed fd 3, which leaves it uncontrollable).
var errChannelClosed = errors.New("the VMM process closed its control channel")

// control is the parent's end of a VMM process's control channel. Calls
// may come from any goroutine; one reader goroutine matches replies to
// them by id. Every call has a deadline of its own, independent of its
// caller's context: a caller may stop waiting, but a reply that does not
// come in time, or any reply that breaks the protocol, breaks the channel
// for good and calls onBroken (which kills the VMM).
type control struct {
	c        *net.UnixConn
	onBroken func(error)

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	next    uint64           // guarded by mu
	pending map[uint64]*call // guarded by mu
	broken  error            // guarded by mu
	// settled is closed once the channel is broken and onBroken has
	// returned: a call that finds it broken waits for that, so that no
	// caller hears of the break before the VMM was dealt with.
	settled     chan struct{}
	settledOnce sync.Once
}

// call is a request waiting for its reply.
type call struct {
	op       string
	timeout  time.Duration
	deadline time.Time
	done     chan callResult // buffered: the reader never blocks on it
}

type callResult struct {
	r   *reply
	err error
}

func newControl(c *net.UnixConn, onBroken func(error)) *control {
	ctl := &control{c: c, onBroken: onBroken, pending: make(map[uint64]*call), settled: make(chan struct{})}
	go ctl.read()
	return ctl
}

// call sends req (with fds, which stay the caller's) and waits for its
// reply until ctx ends; the VMM must answer within timeout whether or not
// the caller still waits. The reply may be an error reply: see replyErr.
func (ctl *control) call(ctx context.Context, req *request, fds []int, timeout time.Duration) (*reply, error) {
	cl := &call{op: req.Op, timeout: timeout, deadline: time.Now().Add(timeout), done: make(chan callResult, 1)}
	ctl.mu.Lock()
	if ctl.broken != nil {
		err := ctl.broken
		ctl.mu.Unlock()
		<-ctl.settled
		return nil, err
	}
	ctl.next++
	req.ID = ctl.next
	ctl.pending[req.ID] = cl
	ctl.armLocked()
	ctl.mu.Unlock()

	ctl.wmu.Lock()
	err := writeRecord(ctl.c, req, fds, cl.deadline)
	ctl.wmu.Unlock()
	if err != nil {
		// A VMM that does not take a request in time is as broken as one
		// that does not answer it.
		ctl.fail(fmt.Errorf("%w: sending %s: %w", ErrProtocol, req.Op, err))
	}
	select {
	case res := <-cl.done:
		return res.r, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("VMM %s: %w", req.Op, ctx.Err())
	}
}

// read matches replies to calls until the channel breaks.
func (ctl *control) read() {
	for {
		b, fds, err := readRecord(ctl.c, maxReply)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if late := ctl.overdue(); late != nil {
					ctl.fail(fmt.Errorf("%w: no reply to %s within %v", ErrProtocol, late.op, late.timeout))
					return
				}
				continue // the deadline moved on
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = errChannelClosed
			} else if !errors.Is(err, ErrProtocol) {
				err = fmt.Errorf("%w: reading a reply: %w", ErrProtocol, err)
			}
			ctl.fail(err)
			return
		}
		if len(fds) > 0 {
			closeFDs(fds)
			ctl.fail(fmt.Errorf("%w: descriptors in a reply", ErrProtocol))
			return
		}
		var r reply
		if err := decodeStrict(b, &r); err != nil {
			ctl.fail(fmt.Errorf("%w: malformed reply: %v", ErrProtocol, err))
			return
		}
		ctl.mu.Lock()
		cl, ok := ctl.pending[r.ID]
		delete(ctl.pending, r.ID)
		ctl.armLocked()
		ctl.mu.Unlock()
		if !ok {
			ctl.fail(fmt.Errorf("%w: a reply (id %d) to no request", ErrProtocol, r.ID))
			return
		}
		cl.done <- callResult{r: &r}
	}
}

// overdue returns a call whose deadline has passed, if any, and re-arms
// the read deadline otherwise.
func (ctl *control) overdue() *call {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	now := time.Now()
	for _, cl := range ctl.pending {
		if !now.Before(cl.deadline) {
			return cl
		}
	}
	ctl.armLocked()
	return nil
}

// armLocked sets the read deadline to the earliest pending call's, or
// none when nothing is pending.
//
// Preconditions: ctl.mu is held.
func (ctl *control) armLocked() {
	var first time.Time
	for _, cl := range ctl.pending {
		if first.IsZero() || cl.deadline.Before(first) {
			first = cl.deadline
		}
	}
	ctl.c.SetReadDeadline(first)
}

// fail breaks the channel with err, once: the socket is closed and
// onBroken called (the VMM killed) before pending calls, and later ones,
// fail with err.
func (ctl *control) fail(err error) {
	ctl.mu.Lock()
	if ctl.broken != nil {
		ctl.mu.Unlock()
		return
	}
	ctl.broken = err
	pending := ctl.pending
	ctl.pending = make(map[uint64]*call)
	ctl.mu.Unlock()
	ctl.c.Close()
	if ctl.onBroken != nil {
		ctl.onBroken(err)
	}
	ctl.settle()
	for _, cl := range pending {
		cl.done <- callResult{err: err}
	}
}

// close ends the channel from the parent's side; later calls fail with
// err.
func (ctl *control) close(err error) {
	ctl.mu.Lock()
	if ctl.broken == nil {
		ctl.broken = err
		for id, cl := range ctl.pending {
			cl.done <- callResult{err: err}
			delete(ctl.pending, id)
		}
	}
	ctl.mu.Unlock()
	ctl.settle()
	ctl.c.Close()
}

func (ctl *control) settle() { ctl.settledOnce.Do(func() { close(ctl.settled) }) }
