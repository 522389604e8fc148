package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/huskrt/husk/internal/logging"
)

// Bounds of the guest's end.
const (
	// portHeaderTimeout bounds the wait for a new stream's port header.
	portHeaderTimeout = 5 * time.Second
	// reopenDelay spaces the guest's attempts to open its port after one
	// failed (a port being unplugged, a host that never comes).
	reopenDelay = time.Second
)

// Opener opens the guest's end of the port once a host is connected to
// it: the session runs on what it returns until that ends (the host went
// away: EOF), and then the port is closed and opened again for the next
// host.
type Opener func(ctx context.Context) (io.ReadWriteCloser, error)

// Server is the guest's end: it serves sessions on a port, one at a time,
// and hands each stream to the listener of its port.
type Server struct {
	listeners map[uint32]*listener // read-only after NewServer
}

// NewServer returns a server whose sessions carry ports; Listener returns
// each port's listener.
func NewServer(ports ...uint32) *Server {
	s := &Server{listeners: map[uint32]*listener{}}
	for _, p := range ports {
		s.listeners[p] = &listener{port: p, conns: make(chan net.Conn), closed: make(chan struct{})}
	}
	return s
}

// Listener returns the listener of port, which NewServer was given. It
// accepts the streams of every session, one after another, until it is
// closed.
func (s *Server) Listener(port uint32) net.Listener {
	l, ok := s.listeners[port]
	if !ok {
		panic(fmt.Sprintf("serial: port %d was not given to NewServer", port))
	}
	return l
}

// Serve serves one session after another on what open returns until ctx
// ends. A session ends when the host goes away (its port reads EOF) or
// breaks the protocol; the next starts with the next host. It returns
// ctx's error.
func (s *Server) Serve(ctx context.Context, open Opener) error {
	log := logging.L(ctx)
	for {
		port, err := open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Warn("opening the serial port", "error", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(reopenDelay):
			}
			continue
		}
		err = s.session(ctx, port)
		_ = port.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Info("serial session ended; reopening the port", "error", err)
	}
}

// session answers the host's handshake on port and then serves its
// streams until the session ends.
func (s *Server) session(ctx context.Context, port io.ReadWriteCloser) error {
	stop := context.AfterFunc(ctx, func() { _ = port.Close() })
	defer stop()
	sc := newScanner(port, 0)
	var last nonce
	var hello bool
	for {
		m, err := sc.next()
		if err != nil {
			return fmt.Errorf("waiting for the host's start: %w", err)
		}
		switch {
		case m.kind == kindHello:
			last, hello = m.nonce, true
			if _, err := port.Write(message{kind: kindReply, nonce: m.nonce}.bytes()); err != nil {
				return err
			}
		case m.kind == kindStart && hello && m.nonce == last:
			if _, err := port.Write(message{kind: kindStarted, nonce: m.nonce}.bytes()); err != nil {
				return err
			}
			return s.serveMux(ctx, guardedConn{Reader: sc.rest(), WriteCloser: port})
		}
		// Anything else is a previous session's: skipped.
	}
}

// serveMux runs yamux's server on conn and routes its streams.
func (s *Server) serveMux(ctx context.Context, conn io.ReadWriteCloser) error {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false // the port's EOF says the host is gone
	cfg.LogOutput = io.Discard
	mux, err := yamux.Server(conn, cfg)
	if err != nil {
		return err
	}
	defer mux.Close()
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			if errors.Is(err, yamux.ErrSessionShutdown) {
				return io.EOF
			}
			return err
		}
		go s.route(ctx, mux, st)
	}
}

// route reads a stream's port header, answers it, and hands the stream to
// its port's listener.
func (s *Server) route(ctx context.Context, mux *yamux.Session, st *yamux.Stream) {
	_ = st.SetReadDeadline(time.Now().Add(portHeaderTimeout))
	port, err := ReadPortHeader(st)
	_ = st.SetReadDeadline(time.Time{})
	if err != nil {
		logging.L(ctx).Warn("refusing a serial stream", "error", err)
		_ = st.Close()
		return
	}
	l, ok := s.listeners[port]
	if !ok {
		logging.L(ctx).Warn("refusing a serial stream to a port nobody serves", "port", port)
		_, _ = st.Write([]byte{portRefused})
		_ = st.Close()
		return
	}
	if _, err := st.Write([]byte{portAccepted}); err != nil {
		_ = st.Close()
		return
	}
	select {
	case l.conns <- st:
	case <-l.closed:
		_ = st.Close()
	case <-mux.CloseChan():
		_ = st.Close()
	}
}

// listener is a port's listener: the streams of the sessions for it.
type listener struct {
	port   uint32
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *listener) Addr() net.Addr { return Addr(l.port) }
