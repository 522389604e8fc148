package serial

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// A handshake message is messageSize bytes: the magic, its kind, a
// version, two reserved zero bytes and the host's nonce. The magic's first
// byte is not 0, yamux's version, so a session of a previous host or guest
// still reading the port fails at the first message instead of taking it
// for a frame.
const (
	messageSize  = 24
	messageMagic = "HSKS"
	// messageVersion is this package's session protocol version.
	messageVersion = 1
)

// Message kinds.
const (
	kindHello   byte = 'H' // host → guest, repeated until answered
	kindReply   byte = 'R' // guest → host, one per hello
	kindStart   byte = 'S' // host → guest, once: yamux follows
	kindStarted byte = 'A' // guest → host, once: yamux follows
)

// nonce names one session: the host draws it, the guest echoes it.
type nonce [16]byte

func newNonce() nonce {
	var n nonce
	rand.Read(n[:]) // never fails (crypto/rand, Go 1.24+)
	return n
}

type message struct {
	kind  byte
	nonce nonce
}

func (m message) bytes() []byte {
	b := make([]byte, messageSize)
	copy(b, messageMagic)
	b[4] = m.kind
	b[5] = messageVersion
	copy(b[8:], m.nonce[:])
	return b
}

// decodeMessage decodes b[:messageSize] if it is a message: the magic, a
// known kind, this version and zero reserved bytes.
func decodeMessage(b []byte) (message, bool) {
	if len(b) < messageSize || string(b[:4]) != messageMagic || b[5] != messageVersion || b[6]|b[7] != 0 {
		return message{}, false
	}
	switch b[4] {
	case kindHello, kindReply, kindStart, kindStarted:
	default:
		return message{}, false
	}
	m := message{kind: b[4]}
	copy(m.nonce[:], b[8:messageSize])
	return m, true
}

// errSkipLimit is readMessage's error once it skipped more than its limit.
var errSkipLimit = errors.New("too many bytes before a session message")

// scanner reads handshake messages from a byte stream that may hold
// anything before them: what a previous session left, a message cut short.
type scanner struct {
	r *bufio.Reader
	// skipped counts the bytes that were no message; limit bounds it
	// (0: no bound, for the guest, which trusts its host).
	skipped, limit int64
}

func newScanner(r io.Reader, limit int64) *scanner {
	return &scanner{r: bufio.NewReaderSize(r, 4096), limit: limit}
}

// next returns the next message, skipping every byte before it that does
// not start one. A message cut short by another's magic is skipped too:
// the search goes on from the byte after the magic it began with.
func (s *scanner) next() (message, error) {
	for {
		b, err := s.r.Peek(messageSize)
		if len(b) < messageSize {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return message{}, err
		}
		if m, ok := decodeMessage(b); ok {
			_, _ = s.r.Discard(messageSize)
			return m, nil
		}
		// Skip to the next magic in what is buffered, or to the last
		// bytes that could begin one.
		b, _ = s.r.Peek(max(s.r.Buffered(), messageSize))
		skip := len(b) - (len(messageMagic) - 1)
		if i := bytes.Index(b[1:], []byte(messageMagic)); i >= 0 {
			skip = 1 + i
		}
		_, _ = s.r.Discard(skip)
		s.skipped += int64(skip)
		if s.limit > 0 && s.skipped > s.limit {
			return message{}, fmt.Errorf("%w: %d", errSkipLimit, s.skipped)
		}
	}
}

// rest returns the bytes the scanner read past the last message, followed
// by the rest of the stream: yamux's input once the handshake is done.
func (s *scanner) rest() io.Reader { return s.r }
