package wasmhost

import (
	"context"
	"sync"
	"time"
)

// pool holds the started instances of one module that are not in a call,
// and bounds how many exist.
type pool struct {
	idle  chan *instance // free instances; capacity = the bound
	slots chan struct{}  // one token per existing instance
	start func(context.Context) (*instance, error)

	mu     sync.Mutex
	closed bool // guarded by mu; put and discard close instead of keeping
}

func (p *pool) init(size int, start func(context.Context) (*instance, error)) {
	p.idle = make(chan *instance, size)
	p.slots = make(chan struct{}, size)
	p.start = start
}

// get returns a free instance, starting one if fewer than the bound exist,
// or waits for one until ctx ends or deadline passes.
func (p *pool) get(ctx context.Context, deadline time.Time) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	select {
	case in := <-p.idle:
		return in, nil
	case p.slots <- struct{}{}:
		in, err := p.start(context.WithoutCancel(ctx))
		if err != nil {
			<-p.slots
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns an instance after a successful call.
func (p *pool) put(in *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		in.close()
		return
	}
	p.idle <- in // never blocks: at most cap(idle) instances exist
}

// discard closes an instance whose call failed and frees its slot.
func (p *pool) discard(in *instance) {
	in.close()
	<-p.slots
}

// close makes put close instances instead of keeping them, and closes
// those that are idle. Instances in a call are closed when they come back.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case in := <-p.idle:
			in.close()
		default:
			return
		}
	}
}
