package client

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"
)

// ttrpc's frame: a 10-byte header (length uint32, stream id uint32, type,
// flags; big-endian) and length bytes of payload. ttrpc refuses to send a
// frame over 4 MiB; on receiving one it skips the announced length, which
// from a hostile peer means waiting for gigabytes that never come. The
// constants below are ttrpc's (channel.go), which it does not export.
const (
	frameHeaderSize = 10
	// MaxFrame is the largest frame ttrpc sends or accepts, and so the
	// largest reply the agent can send.
	MaxFrame = 4 << 20
	// frameResponse is the type of a unary call's reply, the only type a
	// client that opens no streams receives.
	frameResponse = 2
)

// frameScanner follows the frames in a byte stream, chunk by chunk, and
// rejects the first header ttrpc's client would mishandle. It looks at
// headers only: payloads are ttrpc's to decode.
type frameScanner struct {
	hdr    [frameHeaderSize]byte
	nhdr   int    // bytes of hdr filled
	remain uint32 // payload bytes of the current frame still to come
}

// scan consumes b, which continues the stream where the previous call
// stopped. After an error the scanner must not be used again.
func (s *frameScanner) scan(b []byte) error {
	for len(b) > 0 {
		if s.remain > 0 {
			n := uint32(min(uint64(len(b)), uint64(s.remain)))
			s.remain -= n
			b = b[n:]
			continue
		}
		n := copy(s.hdr[s.nhdr:], b)
		s.nhdr += n
		b = b[n:]
		if s.nhdr < frameHeaderSize {
			return nil
		}
		s.nhdr = 0
		length, err := checkFrameHeader(s.hdr)
		if err != nil {
			return err
		}
		s.remain = length
	}
	return nil
}

// checkFrameHeader returns the payload length of a frame the agent sent.
func checkFrameHeader(h [frameHeaderSize]byte) (uint32, error) {
	length := binary.BigEndian.Uint32(h[0:4])
	stream := binary.BigEndian.Uint32(h[4:8])
	typ := h[8]
	switch {
	case length > MaxFrame:
		return 0, fmt.Errorf("%w: a frame of %d bytes, over ttrpc's limit of %d", ErrBadReply, length, MaxFrame)
	case typ != frameResponse:
		return 0, fmt.Errorf("%w: a frame of type %d where only responses (%d) may come", ErrBadReply, typ, frameResponse)
	case stream%2 == 0:
		// ttrpc clients number their streams 1, 3, 5, ...
		return 0, fmt.Errorf("%w: a frame for stream %d, which the host never opens", ErrBadReply, stream)
	}
	return length, nil
}

// frameConn is the connection under the ttrpc client: it scans what the
// agent sends before ttrpc reads it, and bounds every write.
type frameConn struct {
	net.Conn
	// writeTimeout bounds each write: an agent that stops reading blocks
	// ttrpc's writer, which holds the lock every call sends under.
	writeTimeout time.Duration
	// onBad breaks the client; called before Read returns the error.
	onBad func(error)

	// Only ttrpc's receive goroutine reads: scanner and bad are its own.
	scanner frameScanner
	bad     error // the first bad frame seen
}

func newFrameConn(conn net.Conn, writeTimeout time.Duration, onBad func(error)) *frameConn {
	return &frameConn{Conn: conn, writeTimeout: writeTimeout, onBad: onBad}
}

// Read reads from the agent and checks the frame headers in what it read.
// At a bad header it returns nothing of the chunk (the connection is over:
// replies in the same chunk are lost with it) and the error, then the same
// error forever.
func (c *frameConn) Read(p []byte) (int, error) {
	if c.bad != nil {
		return 0, c.bad
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if serr := c.scanner.scan(p[:n]); serr != nil {
			c.bad = serr
			c.onBad(serr)
			return 0, serr
		}
	}
	return n, err
}

// Write writes to the agent within writeTimeout.
func (c *frameConn) Write(p []byte) (int, error) {
	// A connection without deadlines (none of the kinds husk dials) leaves
	// writes unbounded; calls still return at their deadline.
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	return c.Conn.Write(p)
}
