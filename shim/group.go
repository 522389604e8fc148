package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/huskrt/husk/internal/reaper"
)

// A shim exits when containerd asks it to (Shutdown, after each delete) and
// it serves no task. A shim shared by several containers (a pod's, or an
// io.husk.group's) must not exit under a container the start command has
// just handed its address to, before containerd creates the container
// there; nor cut off the answer to another container's call in flight. So:
//
//   - the start command reserves a running shim for the new container (the
//     Group service's Reserve); a reserved shim stays up until the
//     container is created or the reservation lapses, and a shim that has
//     decided to exit says so, with its pid: the start command waits for
//     that process to end (pkg/shim removes the socket on its way out, so a
//     new shim must not bind the path before) and starts a new one;
//   - the shim a start command spawns holds a reservation for that first
//     container, so that one containerd never uses does not stay forever;
//   - an exiting shim first lets the calls in flight return.

// groupService is the ttrpc service the start command reserves a shared
// shim with.
const groupService = "husk.shim.v1.Group"

// reserveTTL bounds how long a reservation keeps a shim up without the
// container being created (containerd never came).
const reserveTTL = 30 * time.Second

// answerGrace is how long an exiting shim waits, once no call is in flight,
// for the last answers to be written.
const answerGrace = 20 * time.Millisecond

// exitGate decides when the shim exits.
type exitGate struct {
	tasks    func() int // how many tasks the shim serves
	shutdown func()     // ends the shim

	mu       sync.Mutex
	ttl      time.Duration        // reserveTTL; shorter in tests
	reserved map[string]time.Time // container id → reservation deadline; guarded by mu
	creating int                  // creates in progress; guarded by mu
	calls    int                  // ttrpc calls in flight; guarded by mu
	closing  bool                 // the shim is exiting; guarded by mu
	idle     chan struct{}        // closed when calls drops to 0 while closing; guarded by mu
	timer    *time.Timer          // a recheck when a reservation lapses; guarded by mu
}

func newExitGate(tasks func() int, shutdown func()) *exitGate {
	return &exitGate{tasks: tasks, shutdown: shutdown, ttl: reserveTTL, reserved: make(map[string]time.Time)}
}

// errClosing is what a create gets from a shim on its way out.
var errClosing = fmt.Errorf("the shim is exiting: %w", errdefs.ErrUnavailable)

// reserve keeps the shim up for container id until it is created or the
// reservation lapses; false if the shim is exiting.
func (g *exitGate) reserve(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	until := time.Now().Add(g.ttl)
	g.reserved[id] = until
	g.recheckLocked(until)
	return true
}

// create marks a create of container id in progress (taking its
// reservation); done ends it, once the task is served or the create failed.
func (g *exitGate) create(id string) (done func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return nil, errClosing
	}
	delete(g.reserved, id)
	g.creating++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.creating--
			g.mu.Unlock()
		})
	}, nil
}

// intercept counts the ttrpc calls in flight (a ttrpc server interceptor).
func (g *exitGate) intercept(ctx context.Context, unmarshal ttrpc.Unmarshaler, _ *ttrpc.UnaryServerInfo, method ttrpc.Method) (any, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.calls--
		if g.calls == 0 && g.idle != nil {
			close(g.idle)
			g.idle = nil
		}
		g.mu.Unlock()
	}()
	return method(ctx, unmarshal)
}

// exitIfIdle ends the shim if it serves no task, creates none and holds no
// live reservation; with reservations only, it looks again when they lapse.
func (g *exitGate) exitIfIdle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing || g.creating > 0 || g.tasks() > 0 {
		return
	}
	now := time.Now()
	for id, until := range g.reserved {
		if !until.After(now) {
			delete(g.reserved, id)
		}
	}
	if len(g.reserved) > 0 {
		return // recheckLocked has a look due
	}
	g.closing = true
	if g.timer != nil {
		g.timer.Stop()
	}
	// The call that got here (Shutdown) is in flight itself: wait for it
	// and any other to return, then for their answers to go out.
	idle := make(chan struct{})
	if g.calls == 0 {
		close(idle)
	} else {
		g.idle = idle
	}
	go func() {
		select {
		case <-idle:
		case <-time.After(drainTimeout):
		}
		time.Sleep(answerGrace)
		g.shutdown()
	}()
}

// drainTimeout bounds how long an exiting shim waits for its calls.
const drainTimeout = 5 * time.Second

// recheckLocked makes sure exitIfIdle runs again once until has passed.
func (g *exitGate) recheckLocked(until time.Time) {
	if g.timer != nil {
		g.timer.Stop()
	}
	latest := until
	for _, u := range g.reserved {
		if u.After(latest) {
			latest = u
		}
	}
	g.timer = time.AfterFunc(time.Until(latest)+time.Millisecond, g.exitIfIdle)
}

// registerGroup serves the Group service on server. Reserve answers the
// shim's pid, negated when the shim is exiting (not reserved).
func registerGroup(server *ttrpc.Server, g *exitGate, pid int) {
	server.Register(groupService, map[string]ttrpc.Method{
		"Reserve": func(ctx context.Context, unmarshal func(any) error) (any, error) {
			var id wrapperspb.StringValue
			if err := unmarshal(&id); err != nil {
				return nil, err
			}
			if !g.reserve(id.GetValue()) {
				return wrapperspb.Int64(-int64(pid)), nil
			}
			return wrapperspb.Int64(int64(pid)), nil
		},
	})
}

// reserveTimeout bounds the start command's call to a running shim.
const reserveTimeout = 5 * time.Second

// errNoShim: nothing answers on a shim socket (a stale file).
var errNoShim = errors.New("no shim answers")

// reserve asks the shim at address (a unix socket address) to stay up for
// container id. It returns 0 when the shim reserved itself (or predates
// the Group service), the pid of a shim that is exiting, or errNoShim.
func reserve(ctx context.Context, address, id string) (exiting int, err error) {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath(address))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNoShim, err)
	}
	c := ttrpc.NewClient(conn)
	defer c.Close()
	var pid wrapperspb.Int64Value
	err = c.Call(ctx, groupService, "Reserve", wrapperspb.String(id), &pid)
	switch {
	case status.Code(err) == codes.Unimplemented:
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("%w: %w", errNoShim, err)
	case pid.GetValue() < 0:
		return int(-pid.GetValue()), nil
	}
	return 0, nil
}

// waitExitTimeout bounds the start command's wait for an exiting shim.
const waitExitTimeout = 10 * time.Second

// waitExit waits for process pid to end (a zombie has).
func waitExit(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, waitExitTimeout)
	defer cancel()
	for reaper.Running(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for exiting shim %d: %w", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// socketPath is the path of a shim socket address ("unix://path").
func socketPath(address string) string { return strings.TrimPrefix(address, "unix://") }
