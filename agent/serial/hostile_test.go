package serial

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// rawGuest answers the host's handshake on conn by hand and returns the
// scanner's reader: the host's yamux frames follow.
func rawGuest(t *testing.T, conn net.Conn) io.Reader {
	t.Helper()
	sc := newScanner(conn, 0)
	var n nonce
	for {
		m, err := sc.next()
		if err != nil {
			t.Errorf("raw guest: %v", err)
			return nil
		}
		switch m.kind {
		case kindHello:
			n = m.nonce
			_, _ = conn.Write(message{kind: kindReply, nonce: n}.bytes())
		case kindStart:
			_, _ = conn.Write(message{kind: kindStarted, nonce: n}.bytes())
			return sc.rest()
		}
	}
}

func frame(typ byte, flags uint16, id, length uint32) []byte {
	b := make([]byte, frameHeaderSize)
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], length)
	return b
}

// waitEnded waits for the session to end and returns its error.
func waitEnded(t *testing.T, s *Session) error {
	t.Helper()
	select {
	case <-s.Done():
		return s.Err()
	case <-time.After(30 * time.Second):
		t.Fatal("the session did not end")
		return nil
	}
}

// TestAGuestThatBreaksTheProtocolEndsItsSession: every frame a guest of
// ours never sends ends the session with ErrGuestProtocol, before yamux
// takes it.
func TestAGuestThatBreaksTheProtocolEndsItsSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"opens a stream", frame(frameWindowUpdate, flagSYN, 2, 0)},
		{"opens a stream with data", append(frame(frameData, flagSYN, 2, 3), "abc"...)},
		{"starts a ping", frame(framePing, flagSYN, 0, 7)},
		{"sends a frame over the window", frame(frameData, 0, 1, 256<<10+1)},
		{"sends another version", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"sends an unknown type", frame(9, 0, 0, 0)},
		{"goes away", frame(frameGoAway, 0, 0, 0)},
		{"hides a ping after data", append(append(frame(frameData, 0, 1, 5), "HSKS!"...), frame(framePing, flagSYN, 0, 1)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostEnd, guestEnd := socketpair(t)
			s, _ := New(hostEnd)
			defer s.Close()
			if rawGuest(t, guestEnd) == nil {
				return
			}
			// Send it one byte at a time: the guard follows frames across reads.
			for _, b := range tc.send {
				if _, err := guestEnd.Write([]byte{b}); err != nil {
					break
				}
			}
			if err := waitEnded(t, s); !errors.Is(err, ErrGuestProtocol) {
				t.Fatalf("session ended with %v, want ErrGuestProtocol", err)
			}
			if _, err := s.Dial(dialCtx(t), 1024); err == nil {
				t.Fatal("Dial on a broken session succeeded")
			}
		})
	}
}

// TestAGuestThatStopsAnsweringIsLeft: a guest that takes the host's
// frames and answers nothing (no pong) has its session closed by the
// keep-alive; a Dial meanwhile ends with its context.
func TestAGuestThatStopsAnsweringIsLeft(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	s, _ := NewConfig(hostEnd, Config{KeepAlive: 50 * time.Millisecond, WriteTimeout: 50 * time.Millisecond})
	defer s.Close()
	rest := rawGuest(t, guestEnd)
	if rest == nil {
		return
	}
	go func() { _, _ = io.Copy(io.Discard, rest) }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Dial(ctx, 1024); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
		t.Logf("Dial to a silent guest: %v", err)
	}
	if err := waitEnded(t, s); err == nil {
		t.Fatal("session ended without an error")
	}
}

// TestABadPortAnswerEndsTheSession: the guest's answer to a port header
// is one byte, 0 or 1; anything else breaks the session.
func TestABadPortAnswerEndsTheSession(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	s, _ := New(hostEnd)
	defer s.Close()
	rest := rawGuest(t, guestEnd)
	if rest == nil {
		return
	}
	go func() {
		// The host opens stream 1 (a window update with SYN) and sends
		// the port header in a data frame; answer with ACK and 0x7f.
		hdr := make([]byte, frameHeaderSize)
		for {
			if _, err := io.ReadFull(rest, hdr); err != nil {
				return
			}
			if hdr[1] == frameData {
				body := make([]byte, binary.BigEndian.Uint32(hdr[8:]))
				if _, err := io.ReadFull(rest, body); err != nil {
					return
				}
				_, _ = guestEnd.Write(frame(frameWindowUpdate, 2, 1, 0))
				_, _ = guestEnd.Write(append(frame(frameData, 0, 1, 1), 0x7f))
			}
		}
	}()
	_, err := s.Dial(dialCtx(t), 1024)
	if !errors.Is(err, ErrGuestProtocol) {
		t.Fatalf("Dial = %v, want ErrGuestProtocol", err)
	}
	if err := waitEnded(t, s); !errors.Is(err, ErrGuestProtocol) {
		t.Fatalf("session ended with %v, want ErrGuestProtocol", err)
	}
}

// TestTheHandshakeSkipsABoundedAmount: a guest that sends only noise, or
// only answers of other sessions, has its session ended once MaxSkip
// bytes are skipped.
func TestTheHandshakeSkipsABoundedAmount(t *testing.T) {
	for name, unit := range map[string][]byte{
		"noise":                  []byte("HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH"),
		"answers to other hosts": message{kind: kindReply, nonce: nonce{9}}.bytes(),
	} {
		t.Run(name, func(t *testing.T) {
			hostEnd, guestEnd := socketpair(t)
			s, _ := NewConfig(hostEnd, Config{MaxSkip: 1 << 20})
			defer s.Close()
			go func() {
				flood := bytes.Repeat(unit, (64<<10)/len(unit))
				for {
					if _, err := guestEnd.Write(flood); err != nil {
						return
					}
				}
			}()
			go func() { _, _ = io.Copy(io.Discard, guestEnd) }()
			if err := waitEnded(t, s); !errors.Is(err, errSkipLimit) {
				t.Fatalf("session ended with %v, want errSkipLimit", err)
			}
		})
	}
}

// TestAGuestThatStartsUnaskedEndsItsSession: STARTED before the host's
// START is the guest's error.
func TestAGuestThatStartsUnaskedEndsItsSession(t *testing.T) {
	hostEnd, guestEnd := socketpair(t)
	s, _ := New(hostEnd)
	defer s.Close()
	sc := newScanner(guestEnd, 0)
	m, err := sc.next()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = guestEnd.Write(message{kind: kindStarted, nonce: m.nonce}.bytes())
	go func() { _, _ = io.Copy(io.Discard, guestEnd) }()
	if err := waitEnded(t, s); !errors.Is(err, ErrGuestProtocol) {
		t.Fatalf("session ended with %v, want ErrGuestProtocol", err)
	}
}
