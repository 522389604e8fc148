package serial

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// socketpair returns two connected Unix stream sockets: the host's end of
// the port and the guest's.
func socketpair(t *testing.T) (host, guest net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// once is an Opener that returns port the first time and then waits for
// ctx: a port whose only host never comes back.
func once(port io.ReadWriteCloser) Opener {
	var mu sync.Mutex
	given := false
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		mu.Lock()
		g := given
		given = true
		mu.Unlock()
		if !g {
			return port, nil
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

// echoServer is a guest serving ports 1024 and 1025 on port, each
// echoing what it reads (1025's streams prefixed with "stream:").
func echoServer(t *testing.T, open Opener) *Server {
	t.Helper()
	srv := NewServer(1024, 1025)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ctx, open) }()
	for _, p := range []uint32{1024, 1025} {
		l := srv.Listener(p)
		prefix := ""
		if p == 1025 {
			prefix = "stream:"
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					b := make([]byte, 64<<10)
					for {
						n, err := c.Read(b)
						if n > 0 {
							if _, err := c.Write(append([]byte(prefix), b[:n]...)); err != nil {
								return
							}
						}
						if err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		<-served
		for _, p := range []uint32{1024, 1025} {
			srv.Listener(p).Close()
		}
	})
	return srv
}

func dialCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip writes msg on c and reads back want.
func roundTrip(t *testing.T, c net.Conn, msg, want string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	_ = c.SetReadDeadline(time.Time{})
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDialReachesEachPort(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	echoServer(t, once(guestEnd))
	s, err := New(hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := dialCtx(t)
	a, err := s.Dial(ctx, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Dial(ctx, 1025)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, a, "check", "check")
	roundTrip(t, b, "out", "stream:out")
	roundTrip(t, a, "again", "again")
	// A large write crosses many windows both ways.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() { _, _ = a.Write(big) }()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(a, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB echo: %v, equal %v", err, bytes.Equal(got, big))
	}
}

func TestDialRefusesAPortNobodyServes(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	echoServer(t, once(guestEnd))
	s, _ := New(hostEnd)
	defer s.Close()
	_, err := s.Dial(dialCtx(t), 7)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial(7) = %v, want ECONNREFUSED", err)
	}
	// The session goes on.
	c, err := s.Dial(dialCtx(t), 1024)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x", "x")
}

// TestDialWaitsForTheAgent: before the guest serves, a Dial fails with its
// context; once the guest serves, the next succeeds, though the guest
// first reads every hello the host sent meanwhile.
func TestDialWaitsForTheAgent(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	s, _ := NewConfig(hostEnd, Config{HelloInterval: time.Millisecond})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := s.Dial(ctx, 1024)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial before the guest serves = %v, want a deadline error", err)
	}
	echoServer(t, once(guestEnd))
	c, err := s.Dial(dialCtx(t), 1024)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "late", "late")
}

// staleGuest is the guest's end of a port with what a previous session
// left in it: before this host's messages, the guest reads stale, and
// before the guest's, the host reads what the guest wrote earlier.
type staleGuest struct {
	io.Reader
	net.Conn
}

func (p staleGuest) Read(b []byte) (int, error) { return p.Reader.Read(b) }

// TestHandshakeSkipsWhatAPreviousSessionLeft: bytes of yamux frames, a
// message cut short and whole messages of another session, in both
// directions, do not stop a new session from starting.
func TestHandshakeSkipsWhatAPreviousSessionLeft(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	old := newNonce()
	var toGuest bytes.Buffer
	toGuest.Write([]byte{0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 5}) // a yamux header
	toGuest.Write(message{kind: kindHello, nonce: old}.bytes()[:13])
	toGuest.Write(message{kind: kindHello, nonce: old}.bytes())
	toGuest.WriteString("HSKSHSKS")
	toGuest.Write(message{kind: kindStart, nonce: newNonce()}.bytes()) // not the hello's nonce
	// What the guest wrote for a previous host, still in the port.
	var toHost bytes.Buffer
	toHost.Write(message{kind: kindReply, nonce: old}.bytes())
	toHost.Write(message{kind: kindStarted, nonce: old}.bytes())
	toHost.WriteString("stdout of a container: HSKS")
	toHost.Write(message{kind: kindReply, nonce: old}.bytes()[:20])
	if _, err := guestEnd.Write(toHost.Bytes()); err != nil {
		t.Fatal(err)
	}
	echoServer(t, once(staleGuest{Reader: io.MultiReader(&toGuest, guestEnd), Conn: guestEnd}))
	s, _ := New(hostEnd)
	defer s.Close()
	c, err := s.Dial(dialCtx(t), 1024)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "fresh", "fresh")
}

// TestAHostThatReconnectsGetsAFreshSession: the guest serves one host
// after another on its port; the first host's streams end with its
// session, the second's work.
func TestAHostThatReconnectsGetsAFreshSession(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "port"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	echoServer(t, func(ctx context.Context) (io.ReadWriteCloser, error) {
		stop := context.AfterFunc(ctx, func() { l.Close() })
		defer stop()
		return l.Accept()
	})
	connect := func() *Session {
		c, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, _ := New(c)
		return s
	}
	first := connect()
	c1, err := first.Dial(dialCtx(t), 1025)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c1, "one", "stream:one")
	first.Close()
	if _, err := c1.Write([]byte("x")); err == nil {
		t.Fatal("a stream of a closed session still writes")
	}
	<-first.Done()
	if !errors.Is(first.Err(), net.ErrClosed) {
		t.Fatalf("closed session's Err = %v, want net.ErrClosed", first.Err())
	}
	second := connect()
	defer second.Close()
	c2, err := second.Dial(dialCtx(t), 1025)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c2, "two", "stream:two")
}

func TestStreamLimit(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	echoServer(t, once(guestEnd))
	s, _ := NewConfig(hostEnd, Config{MaxStreams: 2})
	defer s.Close()
	for i := 0; i < 2; i++ {
		if _, err := s.Dial(dialCtx(t), 1024); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Dial(dialCtx(t), 1024); !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("third Dial with MaxStreams 2 = %v, want ErrResourceExhausted", err)
	}
}

// TestCloseEndsABlockedRead: a host's Close of a stream is a whole close,
// as a vsock connection's is: its blocked Read returns at once, without
// waiting for the guest's FIN.
func TestCloseEndsABlockedRead(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	echoServer(t, once(guestEnd))
	s, _ := New(hostEnd)
	defer s.Close()
	c, err := s.Dial(dialCtx(t), 1024)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	c.Close()
	if err := <-read; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
}

// TestHammer: many goroutines dial, echo and close at once on one
// session; every stream gets its own bytes back.
func TestHammer(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	echoServer(t, once(guestEnd))
	s, _ := New(hostEnd)
	defer s.Close()
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c, err := s.Dial(dialCtx(t), 1024)
				if err != nil {
					errs <- err
					return
				}
				msg := []byte{byte(w), byte(r), 'x', 'y'}
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- errors.Join(err, errors.New("echo differs: "+string(got)))
					return
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkStream measures one stream's throughput, guest to host, over
// a socketpair: what the session (yamux, the guard) costs beside the port.
func BenchmarkStream(b *testing.B) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], _ = net.FileConn(f)
		f.Close()
		defer conns[i].Close()
	}
	srv := NewServer(1025)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, once(conns[1])) }()
	chunk := make([]byte, 32<<10)
	go func() {
		c, err := srv.Listener(1025).Accept()
		if err != nil {
			return
		}
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	s, _ := New(conns[0])
	defer s.Close()
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	c, err := s.Dial(dctx, 1025)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(chunk))
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
