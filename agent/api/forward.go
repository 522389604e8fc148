package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ForwardPort is the guest vsock port port-forward connections arrive on:
// one connection per forwarded TCP connection. The host writes the
// 8-byte header WriteForwardHeader makes ("HSKF", two zero bytes, the TCP
// port as a big-endian uint16); the agent dials that port on the guest's
// loopback (then on the guest's own addresses) and answers one byte,
// ForwardConnected or ForwardRefused. After ForwardConnected the
// connection carries the TCP connection's bytes both ways (Relay); after
// anything else it is closed.
const ForwardPort = 1026

// ForwardHeaderSize is the length of a forward connection's header.
const ForwardHeaderSize = 8

// The agent's answers to a forward header.
const (
	ForwardConnected byte = 0
	ForwardRefused   byte = 1
)

const forwardMagic = "HSKF"

// ErrBadForwardHeader is what ReadForwardHeader returns (wrapped) for a
// header that is not one.
var ErrBadForwardHeader = errors.New("bad forward header")

// WriteForwardHeader writes the header that asks for TCP port port. port
// must not be 0.
func WriteForwardHeader(w io.Writer, port uint16) error {
	if port == 0 {
		return fmt.Errorf("%w: port 0", ErrBadForwardHeader)
	}
	var b [ForwardHeaderSize]byte
	copy(b[:4], forwardMagic)
	binary.BigEndian.PutUint16(b[6:], port)
	_, err := w.Write(b[:])
	return err
}

// ReadForwardHeader reads a forward header from r and returns its port. It
// reads exactly ForwardHeaderSize bytes, or fails: a short read, a wrong
// magic, reserved bytes that are not zero and port 0 are errors.
func ReadForwardHeader(r io.Reader) (uint16, error) {
	var b [ForwardHeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("reading forward header: %w", err)
	}
	if string(b[:4]) != forwardMagic {
		return 0, fmt.Errorf("%w: magic %q, want %q", ErrBadForwardHeader, b[:4], forwardMagic)
	}
	if b[4]|b[5] != 0 {
		return 0, fmt.Errorf("%w: reserved bytes % x are not zero", ErrBadForwardHeader, b[4:6])
	}
	port := binary.BigEndian.Uint16(b[6:])
	if port == 0 {
		return 0, fmt.Errorf("%w: port 0", ErrBadForwardHeader)
	}
	return port, nil
}

// Relay copies a's bytes to b and b's to a until both directions have
// ended, or one has and grace has passed since, or one failed, or ctx
// ends; then it closes both and returns once neither copy runs. A direction that reads
// EOF half-closes its writer where the connection can (CloseWrite: TCP,
// vsock), so that a peer that half-closes is seen to.
func Relay(ctx context.Context, a, b net.Conn, grace time.Duration) {
	var closeOnce sync.Once
	closeBoth := func() {
		closeOnce.Do(func() {
			_ = a.Close()
			_ = b.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	done := make(chan error, 2)
	copyTo := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			_ = cw.CloseWrite()
		}
		done <- err
	}
	go copyTo(a, b)
	go copyTo(b, a)
	if err := <-done; err != nil {
		// A broken direction breaks the other: nothing more can be said.
		closeBoth()
		<-done
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		closeBoth()
		return
	case <-t.C:
	case <-ctx.Done():
	}
	closeBoth()
	<-done
}
