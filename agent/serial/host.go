package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/hashicorp/yamux"
)

// Config bounds what a guest can make the host hold. The zero value of a
// field takes its default (DefaultConfig).
type Config struct {
	// MaxStreams bounds the session's streams, the closing ones
	// included: each holds at most Window bytes the guest sent and the
	// host has not read, so the session holds at most MaxStreams ×
	// Window.
	MaxStreams int
	// Window is each stream's receive window (yamux's minimum and
	// default: 256 KiB).
	Window uint32
	// MaxSkip bounds the bytes the handshake skips before the guest's
	// answers (what a previous session left in the port).
	MaxSkip int64
	// HelloInterval is how often the host repeats its hello until the
	// guest answers (its agent may still be booting).
	HelloInterval time.Duration
	// KeepAlive is how often the host pings the guest; a guest that does
	// not answer within WriteTimeout, or does not take a frame within it,
	// ends the session.
	KeepAlive    time.Duration
	WriteTimeout time.Duration
	// DialTimeout bounds a Dial whose context has no deadline.
	DialTimeout time.Duration
}

// streamOpenTimeout ends a session whose guest does not acknowledge a
// stream in time (the guest's yamux acknowledges as it accepts, at once).
const streamOpenTimeout = 30 * time.Second

// DefaultConfig is the configuration New uses.
var DefaultConfig = Config{
	MaxStreams:    256,
	Window:        256 << 10,
	MaxSkip:       64 << 20,
	HelloInterval: 100 * time.Millisecond,
	KeepAlive:     10 * time.Second,
	WriteTimeout:  10 * time.Second,
	DialTimeout:   10 * time.Second,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.MaxStreams > 0 {
		d.MaxStreams = c.MaxStreams
	}
	if c.Window > 0 {
		d.Window = max(c.Window, 256<<10)
	}
	if c.MaxSkip > 0 {
		d.MaxSkip = c.MaxSkip
	}
	if c.HelloInterval > 0 {
		d.HelloInterval = c.HelloInterval
	}
	if c.KeepAlive > 0 {
		d.KeepAlive = c.KeepAlive
	}
	if c.WriteTimeout > 0 {
		d.WriteTimeout = c.WriteTimeout
	}
	if c.DialTimeout > 0 {
		d.DialTimeout = c.DialTimeout
	}
	return d
}

// Session is the host's end of a serial session: it dials the guest's
// ports over the host end of the port (QEMU's chardev socket). One
// connection carries one session; a host that reconnects makes a new
// Session on its new connection, and the guest starts a new one too.
type Session struct {
	conn net.Conn
	cfg  Config

	ready chan struct{} // closed once the handshake is done, or failed
	done  chan struct{} // closed once the session has ended
	once  sync.Once     // closes done

	mu   sync.Mutex
	mux  *yamux.Session // guarded by mu; set before ready is closed
	err  error          // guarded by mu: why the session ended
	shut bool           // guarded by mu: Close was called
}

// New starts a session on conn with DefaultConfig. It returns at once:
// the handshake goes on in the background until the guest's agent answers
// (Dial waits for it) or the session is closed.
func New(conn net.Conn) (*Session, error) { return NewConfig(conn, Config{}) }

// NewConfig is New with cfg's bounds.
func NewConfig(conn net.Conn, cfg Config) (*Session, error) {
	if conn == nil {
		return nil, fmt.Errorf("serial session: no connection: %w", errdefs.ErrInvalidArgument)
	}
	s := &Session{conn: conn, cfg: cfg.withDefaults(), ready: make(chan struct{}), done: make(chan struct{})}
	go s.start()
	return s, nil
}

// start runs the handshake and then yamux over the rest of the stream.
func (s *Session) start() {
	sc, err := s.handshake()
	if err != nil {
		s.end(fmt.Errorf("serial session handshake: %w", err))
		close(s.ready)
		return
	}
	g := &guard{r: sc.rest(), maxLength: s.cfg.Window}
	ycfg := yamux.DefaultConfig()
	// The guard ends the session before yamux takes a stream the guest
	// opens; the backlog also bounds the host's streams awaiting the
	// guest's ACK, which StreamOpenTimeout bounds in time.
	ycfg.AcceptBacklog = 64
	ycfg.EnableKeepAlive = true
	ycfg.KeepAliveInterval = s.cfg.KeepAlive
	ycfg.ConnectionWriteTimeout = s.cfg.WriteTimeout
	ycfg.MaxStreamWindowSize = s.cfg.Window
	ycfg.StreamOpenTimeout = streamOpenTimeout
	ycfg.StreamCloseTimeout = time.Minute
	ycfg.LogOutput = io.Discard // a guest could flood the shim's log with yamux's warnings
	mux, err := yamux.Client(guardedConn{Reader: g, WriteCloser: s.conn}, ycfg)
	if err != nil {
		s.end(err)
		close(s.ready)
		return
	}
	s.mu.Lock()
	closed := s.shut
	s.mux = mux
	s.mu.Unlock()
	close(s.ready)
	if closed {
		_ = mux.Close()
	}
	<-mux.CloseChan()
	err = g.failure()
	if err == nil {
		// yamux keeps its reason: a keep-alive unanswered, a write
		// that timed out, the connection's end.
		err = errors.New("the serial session ended: the guest stopped answering, or the port closed")
	}
	s.end(err)
}

// handshake sends hellos until the guest replies with this session's
// nonce, then starts the session and waits for the guest's start.
func (s *Session) handshake() (*scanner, error) {
	n := newNonce()
	sc := newScanner(s.conn, s.cfg.MaxSkip)
	type result struct {
		m   message
		err error
	}
	// The scanner runs in a goroutine of its own so that hellos go on
	// while it waits; only it reads the connection.
	// It stops after the guest's start: what follows is yamux's.
	msgs := make(chan result)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			m, err := sc.next()
			if err == nil && m.nonce != n {
				// A previous session's, or a guest's guess: skipped,
				// and counted as skipped.
				if sc.skipped += messageSize; sc.skipped > sc.limit {
					err = fmt.Errorf("%w: %d", errSkipLimit, sc.skipped)
				} else {
					continue
				}
			}
			select {
			case msgs <- result{m, err}:
			case <-stop:
				return
			}
			if err != nil || (m.kind == kindStarted && m.nonce == n) {
				return
			}
		}
	}()
	hello := message{kind: kindHello, nonce: n}.bytes()
	tick := time.NewTicker(s.cfg.HelloInterval)
	defer tick.Stop()
	s.send(hello) // a guest that is not reading yet gets it later, or the next
	for replied := false; ; {
		select {
		case <-tick.C:
			if !replied {
				s.send(hello)
			}
		case r := <-msgs:
			if r.err != nil {
				return nil, r.err
			}
			switch r.m.kind {
			case kindReply:
				if !replied {
					replied = true
					if err := s.sendAll(message{kind: kindStart, nonce: n}.bytes()); err != nil {
						return nil, fmt.Errorf("sending start: %w", err)
					}
				}
			case kindStarted:
				if !replied {
					return nil, fmt.Errorf("%w: it started the session before it was asked to", ErrGuestProtocol)
				}
				return sc, nil // the scanner stopped: the rest is yamux's
			default:
				return nil, fmt.Errorf("%w: a host's message (%q)", ErrGuestProtocol, r.m.kind)
			}
		case <-s.done:
			return nil, net.ErrClosed
		}
	}
}

// send writes a hello within the write timeout; a guest that takes none
// gets the next (the guest's scanner skips one cut short).
func (s *Session) send(b []byte) {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = s.conn.Write(b)
	_ = s.conn.SetWriteDeadline(time.Time{})
}

func (s *Session) sendAll(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err := s.conn.Write(b)
	_ = s.conn.SetWriteDeadline(time.Time{})
	return err
}

// end records why the session ended and closes the connection.
func (s *Session) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
		_ = s.conn.Close()
		close(s.done)
	})
}

// Dial opens a stream to guest port, bounded by ctx (DialTimeout without
// a deadline): it waits for the handshake, sends the port header and
// waits for the guest's answer. A port the guest does not serve is
// refused with syscall.ECONNREFUSED, as vsock refuses it.
func (s *Session) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DialTimeout)
		defer cancel()
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("dialling guest port %d: the agent has not answered the serial session: %w", port, ctx.Err())
	}
	s.mu.Lock()
	mux, serr := s.mux, s.err
	s.mu.Unlock()
	if mux == nil || mux.IsClosed() {
		if serr == nil {
			serr = net.ErrClosed
		}
		return nil, fmt.Errorf("dialling guest port %d: %w", port, serr)
	}
	if n := mux.NumStreams(); n >= s.cfg.MaxStreams {
		return nil, fmt.Errorf("dialling guest port %d: the serial session has %d streams, its limit: %w", port, n, errdefs.ErrResourceExhausted)
	}
	st, err := mux.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("dialling guest port %d: %w", port, err)
	}
	deadline, _ := ctx.Deadline()
	_ = st.SetDeadline(deadline)
	// ctx may end before its deadline: the stream is closed then, which
	// ends the wait for the answer.
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	err = WritePortHeader(st, port)
	if err == nil {
		err = readPortAnswer(st)
	}
	if !stop() && err == nil {
		err = ctx.Err() // the deadline may be set in the past: fail
	}
	_ = st.SetDeadline(time.Time{})
	switch {
	case err == nil:
		return &stream{Stream: st}, nil
	case errors.Is(err, errRefused):
		_ = st.Close()
		return nil, fmt.Errorf("dialling guest port %d: %w", port, syscall.ECONNREFUSED)
	case errors.Is(err, ErrBadPortHeader):
		_ = st.Close()
		err = fmt.Errorf("%w: %w", ErrGuestProtocol, err)
		s.fail(err)
		return nil, fmt.Errorf("dialling guest port %d: %w", port, err)
	default:
		_ = st.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dialling guest port %d: %w", port, ctx.Err())
		}
		return nil, fmt.Errorf("dialling guest port %d: %w", port, err)
	}
}

// fail ends the session with err.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	mux := s.mux
	s.mu.Unlock()
	if mux != nil {
		_ = mux.Close()
	}
	s.end(err)
}

// Close ends the session and every stream of it.
func (s *Session) Close() error {
	s.mu.Lock()
	s.shut = true
	if s.err == nil {
		s.err = net.ErrClosed
	}
	mux := s.mux
	s.mu.Unlock()
	if mux != nil {
		_ = mux.Close()
	}
	s.end(net.ErrClosed)
	return nil
}

// Done is closed once the session has ended: closed, broken by the
// guest, or its connection gone. Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended; nil while it runs.
func (s *Session) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// stream is a session's stream as the host uses a connection: Close ends
// it for both directions at once (yamux's Close only sends FIN, and a
// read would wait for the guest's), and later reads and writes fail.
type stream struct {
	*yamux.Stream
	mu     sync.Mutex
	closed bool // guarded by mu
}

func (c *stream) Read(b []byte) (int, error) {
	n, err := c.Stream.Read(b)
	if err != nil && c.isClosed() {
		return n, net.ErrClosed
	}
	return n, err
}

func (c *stream) Write(b []byte) (int, error) {
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	return c.Stream.Write(b)
}

func (c *stream) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close sends the guest FIN and wakes a blocked Read (a deadline in the
// past: yamux wakes its readers on Close, and they find it).
func (c *stream) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	_ = c.Stream.SetReadDeadline(time.Now())
	return c.Stream.Close()
}

// Addr is a serial session's port as a net.Addr.
type Addr uint32

func (a Addr) Network() string { return "serial" }
func (a Addr) String() string  { return fmt.Sprintf("serial:%d", uint32(a)) }
