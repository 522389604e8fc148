package vmproc

import (
	"context"
	"errors"
	"time"
)

// ErrNotReaped is Stop's error when ctx ended after the process was
// killed but before it was reaped.
var ErrNotReaped = errors.New("killed, not yet reaped")

// Stop ends a VM's process the way both backends do: ask (run in a
// goroutine of its own, with a context that ends after grace) asks the
// process to stop; if done is not closed within grace (or ctx), kill is
// called with why; then Stop waits for done, bounded by ctx. A process
// that has ended already is not an error. The answer to ask is not what
// counts: the process's end is.
func Stop(ctx context.Context, grace time.Duration, done <-chan struct{}, ask func(context.Context), kill func(why error)) error {
	select {
	case <-done:
		return nil
	default:
	}
	gctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	go ask(gctx)
	select {
	case <-done:
		return nil
	case <-gctx.Done():
	}
	kill(errors.New("did not stop within " + grace.String()))
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.Join(ErrNotReaped, ctx.Err())
	}
}
