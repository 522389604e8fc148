package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"
)

// gate returns an exitGate over a task count the test sets, and a channel
// that receives each time it ends the shim.
func gate(tasks *atomic.Int32) (*exitGate, chan struct{}) {
	ends := make(chan struct{}, 4)
	g := newExitGate(func() int { return int(tasks.Load()) }, func() { ends <- struct{}{} })
	return g, ends
}

func ended(ends chan struct{}, within time.Duration) bool {
	select {
	case <-ends:
		return true
	case <-time.After(within):
		return false
	}
}

func TestExitGate(t *testing.T) {
	var tasks atomic.Int32
	g, ends := gate(&tasks)

	// A reservation keeps an idle shim up; its create ends the reservation
	// and, while in progress, keeps the shim up too.
	if !g.reserve("c2") {
		t.Fatal("reserve on a live shim failed")
	}
	g.exitIfIdle()
	done, err := g.create("c2")
	if err != nil {
		t.Fatal(err)
	}
	g.exitIfIdle()
	tasks.Store(1)
	done()
	g.exitIfIdle()
	if ended(ends, 100*time.Millisecond) {
		t.Fatal("exited with a reservation, a create or a task")
	}

	// The last task gone, it exits, once, and turns newcomers away.
	tasks.Store(0)
	g.exitIfIdle()
	g.exitIfIdle()
	if !ended(ends, time.Second) {
		t.Fatal("did not exit once idle")
	}
	if ended(ends, 100*time.Millisecond) {
		t.Fatal("exited twice")
	}
	if g.reserve("c3") {
		t.Error("an exiting shim took a reservation")
	}
	if _, err := g.create("c3"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("create on an exiting shim = %v, want unavailable", err)
	}
}

// A reservation containerd never uses lapses, and the shim then exits.
func TestExitGateReservationLapses(t *testing.T) {
	var tasks atomic.Int32
	g, ends := gate(&tasks)
	g.ttl = 50 * time.Millisecond
	g.reserve("never")
	g.exitIfIdle()
	if !ended(ends, 5*time.Second) {
		t.Fatal("the shim did not exit once the reservation lapsed")
	}
}

// An exiting shim lets the calls in flight return first.
func TestExitGateWaitsForCalls(t *testing.T) {
	var tasks atomic.Int32
	g, ends := gate(&tasks)
	release := make(chan struct{})
	inCall := make(chan struct{})
	go func() {
		_, _ = g.intercept(context.Background(), nil, nil, func(context.Context, func(any) error) (any, error) {
			close(inCall)
			<-release
			return nil, nil
		})
	}()
	<-inCall
	g.exitIfIdle()
	if ended(ends, 100*time.Millisecond) {
		t.Fatal("exited with a call in flight")
	}
	close(release)
	if !ended(ends, time.Second) {
		t.Fatal("did not exit once the call returned")
	}
}

// serveGroup serves the Group service of g on a new socket and returns its
// address.
func serveGroup(t *testing.T, g *exitGate) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	if g != nil {
		registerGroup(srv, g, 4242)
	}
	go func() { _ = srv.Serve(context.Background(), l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

// reserve talks to the Group service over ttrpc, as the start command does.
func TestReserveOverTTRPC(t *testing.T) {
	var tasks atomic.Int32
	g, ends := gate(&tasks)
	addr := serveGroup(t, g)
	ctx := context.Background()
	if exiting, err := reserve(ctx, addr, "c1"); exiting != 0 || err != nil {
		t.Fatalf("reserve = %d, %v; want reserved", exiting, err)
	}
	g.mu.Lock()
	g.reserved = map[string]time.Time{}
	g.mu.Unlock()
	g.exitIfIdle()
	<-ends
	if exiting, err := reserve(ctx, addr, "c2"); exiting != 4242 || err != nil {
		t.Errorf("reserve on an exiting shim = %d, %v; want its pid", exiting, err)
	}
	// A shim without the Group service (an older husk) counts as
	// reserved; no shim at all is errNoShim.
	if exiting, err := reserve(ctx, serveGroup(t, nil), "c1"); exiting != 0 || err != nil {
		t.Errorf("reserve on a shim without the Group service = %d, %v; want reserved", exiting, err)
	}
	if _, err := reserve(ctx, "unix://"+filepath.Join(t.TempDir(), "none"), "c1"); !errors.Is(err, errNoShim) {
		t.Errorf("reserve with no shim = %v, want errNoShim", err)
	}
}

// A group shim removes its socket on its way out only while it is its own.
func TestRemoveOwnSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	f, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	owner, err := socketOwner(int(f.Fd()))
	if err != nil || owner != os.Getpid() {
		t.Fatalf("socketOwner = %d, %v; want this process", owner, err)
	}
	if err := removeOwnSocket("unix://"+sock, owner+1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("removed a socket that was not its own: %v", err)
	}
	if err := removeOwnSocket("unix://"+sock, owner); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("kept its own socket: %v", err)
	}
	if err := removeOwnSocket("unix://"+sock, owner); err != nil {
		t.Errorf("no socket left: %v", err)
	}
}

// listen replaces the socket of a dead shim (a file nothing answers on).
func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the file stays: a dead shim's socket
	for _, shared := range []bool{false, true} {
		nl, err := listen(context.Background(), "unix://"+sock, "c1", shared)
		if err != nil || nl == nil {
			t.Fatalf("shared=%v: listen over a stale socket = %v, %v; want a new listener", shared, nl, err)
		}
		nl.SetUnlinkOnClose(false)
		nl.Close()
	}
}

// Start commands of one group racing over a dead shim's socket: exactly one
// binds a new socket and the others reserve the shim it starts. Each used
// to remove the socket it found unanswered — which could already be the
// winner's new one — and bind its own, so a start command handed
// containerd a path that no longer existed (TestGroupComingAndGoing:
// "dial unix .../s/<group>: no such file or directory").
func TestListenRaceOverAStaleSocket(t *testing.T) {
	for round := range 20 {
		sock := filepath.Join(t.TempDir(), "s")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()

		const starters = 6
		var won atomic.Int32
		errs := make(chan error, starters)
		start := make(chan struct{})
		for i := range starters {
			go func() {
				<-start
				nl, err := listen(context.Background(), "unix://"+sock, fmt.Sprintf("c%d", i), true)
				switch {
				case err != nil:
					errs <- err
					return
				case nl != nil:
					// The new shim serves on it at once.
					won.Add(1)
					var tasks atomic.Int32
					tasks.Store(1)
					g, _ := gate(&tasks)
					srv, err := ttrpc.NewServer()
					if err != nil {
						errs <- err
						return
					}
					registerGroup(srv, g, 4242)
					go func() { _ = srv.Serve(context.Background(), nl) }()
					t.Cleanup(func() { _ = srv.Close() })
				}
				errs <- nil
			}()
		}
		close(start)
		for range starters {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
		if n := won.Load(); n != 1 {
			t.Fatalf("round %d: %d start commands bound a socket; want 1 (the others must use its shim)", round, n)
		}
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("round %d: the winner's socket is gone: %v", round, err)
		}
	}
}

// The lock leaves nothing beside the sockets: containerd's directory holds
// only what the shims serve on.
func TestLockSocketsLeavesNoFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	unlock, err := lockSockets("unix://" + filepath.Join(dir, "abc"))
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("socket directory after a lock: %v, %v; want it empty", ents, err)
	}
}

// A socket is dead only when connecting is refused or it is gone; a live
// listener is live however slowly it would answer.
func TestDeadSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	if !deadSocket("unix://" + sock) {
		t.Error("a missing socket is not dead")
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if deadSocket("unix://" + sock) {
		t.Error("a listening socket (nobody accepting) is dead")
	}
	l.Close()
	if !deadSocket("unix://" + sock) {
		t.Error("a closed listener's socket is not dead")
	}
}
