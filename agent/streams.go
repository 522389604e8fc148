package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
)

// Bounds on the stream connections the host attaches.
const (
	// headerTimeout bounds the wait for a new connection's header.
	headerTimeout = 5 * time.Second
	// takeTimeout bounds how long a process waits for a stream the host
	// named but has not attached yet: the host attaches its streams before
	// the call that names them, so this covers only the connection's
	// header still in flight, and stays well within the call's deadline.
	takeTimeout = 2 * time.Second
	// unclaimedTimeout is how long an attached stream waits to be named
	// by a process before it is closed.
	unclaimedTimeout = time.Minute
	// maxPending bounds the streams attached and not yet taken.
	maxPending = 256
)

// streams keeps the connections the host attached on api.StreamPort until
// the process that names them takes them (stdio.Streams).
type streams struct {
	mu      sync.Mutex
	pending map[uint64]pendingStream // guarded by mu
	// changed is closed, and replaced, whenever a stream is added.
	changed chan struct{} // guarded by mu
}

type pendingStream struct {
	conn  net.Conn
	timer *time.Timer // closes an unclaimed connection
}

func newStreams() *streams {
	return &streams{pending: map[uint64]pendingStream{}, changed: make(chan struct{})}
}

// serve accepts stream connections on l until it is closed.
func (s *streams) serve(ctx context.Context, l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go s.attach(ctx, c)
	}
}

// attach reads a new connection's header and keeps it for its process.
func (s *streams) attach(ctx context.Context, c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(headerTimeout))
	id, err := api.ReadStreamHeader(c)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		logging.L(ctx).Warn("refusing a stream connection", "error", err)
		c.Close()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.pending[id]; dup || len(s.pending) >= maxPending {
		logging.L(ctx).Warn("refusing a stream connection", "stream", id, "duplicate", dup, "pending", len(s.pending))
		c.Close()
		return
	}
	s.pending[id] = pendingStream{conn: c, timer: time.AfterFunc(unclaimedTimeout, func() { s.drop(id, c) })}
	close(s.changed)
	s.changed = make(chan struct{})
}

// drop closes stream id if it is still c and unclaimed.
func (s *streams) drop(id uint64, c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pending[id]; ok && p.conn == c {
		delete(s.pending, id)
		c.Close()
	}
}

// Take returns stream name (its decimal id), waiting up to takeTimeout
// for the host to attach it.
func (s *streams) Take(ctx context.Context, name string) (io.ReadWriteCloser, error) {
	id, err := strconv.ParseUint(name, 10, 64)
	if err != nil || id == 0 {
		return nil, fmt.Errorf("stream %q: not a stream id: %w", name, errdefs.ErrInvalidArgument)
	}
	ctx, cancel := context.WithTimeout(ctx, takeTimeout)
	defer cancel()
	for {
		s.mu.Lock()
		p, ok := s.pending[id]
		if ok {
			delete(s.pending, id)
			p.timer.Stop()
		}
		changed := s.changed
		s.mu.Unlock()
		if ok {
			return p.conn, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("stream %d was not attached: %w", id, errdefs.ErrNotFound)
		}
	}
}

// close closes every unclaimed stream.
func (s *streams) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.pending {
		p.timer.Stop()
		p.conn.Close()
		delete(s.pending, id)
	}
}

// streamName is the stdio name of stream id, "" for none.
func streamName(id uint64) string {
	if id == 0 {
		return ""
	}
	return "stream:" + strconv.FormatUint(id, 10)
}
