package serial

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// yamux's frame header (its spec.md): version, type, flags, stream id,
// length, big-endian; a data frame's length bytes of payload follow.
const (
	frameHeaderSize = 12
	frameVersion    = 0

	frameData         = 0
	frameWindowUpdate = 1
	framePing         = 2
	frameGoAway       = 3

	flagSYN = 1
)

// ErrGuestProtocol is what a session the guest broke ends with (wrapped).
var ErrGuestProtocol = errors.New("the guest broke the serial session's protocol")

// guard reads the guest's yamux frames on their way to the host's yamux
// session and fails the read, ending the session, at the first frame a
// guest of ours never sends: yamux itself would accept a stream the guest
// opens (holding it for an Accept the host never makes), answers every
// ping from a goroutine of its own (unbounded while the guest does not
// read the answers), and keeps a session whose guest went away. A data frame over the window fails here before any
// of it is buffered (yamux would refuse it too).
type guard struct {
	r         io.Reader
	maxLength uint32

	hdr  [frameHeaderSize]byte
	hdrN int    // bytes of hdr read
	body uint32 // payload bytes still to pass before the next header

	mu  sync.Mutex
	err error // guarded by mu: the first violation
}

func (g *guard) Read(p []byte) (int, error) {
	if err := g.failure(); err != nil {
		return 0, err
	}
	n, err := g.r.Read(p)
	if verr := g.check(p[:n]); verr != nil {
		g.mu.Lock()
		g.err = verr
		g.mu.Unlock()
		return 0, verr
	}
	return n, err
}

// failure is the violation that ended the session, if one did.
func (g *guard) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// check follows the frames in b, the next bytes of the stream.
func (g *guard) check(b []byte) error {
	for len(b) > 0 {
		if g.body > 0 {
			n := min(uint32(len(b)), g.body)
			g.body -= n
			b = b[n:]
			continue
		}
		n := copy(g.hdr[g.hdrN:], b)
		g.hdrN += n
		b = b[n:]
		if g.hdrN < frameHeaderSize {
			return nil
		}
		g.hdrN = 0
		if err := g.frame(); err != nil {
			return err
		}
	}
	return nil
}

// frame checks the header in g.hdr.
func (g *guard) frame() error {
	version, typ := g.hdr[0], g.hdr[1]
	flags := binary.BigEndian.Uint16(g.hdr[2:])
	id := binary.BigEndian.Uint32(g.hdr[4:])
	length := binary.BigEndian.Uint32(g.hdr[8:])
	if version != frameVersion {
		return fmt.Errorf("%w: frame version %d", ErrGuestProtocol, version)
	}
	switch typ {
	case frameData, frameWindowUpdate:
		if flags&flagSYN != 0 {
			return fmt.Errorf("%w: it opened stream %d", ErrGuestProtocol, id)
		}
		if typ == frameData {
			if length > g.maxLength {
				return fmt.Errorf("%w: a %d-byte frame on stream %d, over the window (%d)", ErrGuestProtocol, length, id, g.maxLength)
			}
			g.body = length
		}
	case framePing:
		if flags&flagSYN != 0 {
			return fmt.Errorf("%w: it started a ping", ErrGuestProtocol)
		}
	case frameGoAway:
		// Our guest never sends one but on a protocol error it then
		// ends the session for; the host ends it here instead of
		// keeping a session that refuses every stream.
		return fmt.Errorf("%w: it went away (code %d)", ErrGuestProtocol, length)
	default:
		return fmt.Errorf("%w: frame type %d", ErrGuestProtocol, typ)
	}
	return nil
}

// guardedConn is the session's connection as yamux sees it: reads pass
// the guard, writes and Close go to the connection.
type guardedConn struct {
	io.Reader
	io.WriteCloser
}
