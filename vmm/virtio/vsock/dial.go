package vsock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrDialRefused reports a host-to-guest connection the guest did not
// accept (it reset the request, nobody listens on the port, or it did not
// answer in time): the device closed the socket instead of answering OK.
var ErrDialRefused = errors.New("vsock: the guest refused the connection")

// maxOKLine bounds the "OK <port>\n" answer read from the device.
const maxOKLine = 32

// Dial is the host side of a hybrid vsock connection to the guest's port:
// it connects to the device's Unix socket udsPath, writes
// "CONNECT <port>\n" and reads the device's "OK <host port>\n" byte by
// byte, so that every byte after it on the returned connection is the
// guest's. It returns the connection and the host port the device gave
// it. ctx bounds the dial and the handshake, not the connection.
func Dial(ctx context.Context, udsPath string, port uint32) (net.Conn, uint32, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", udsPath)
	if err != nil {
		return nil, 0, err
	}
	hostPort, err := clientHandshake(ctx, c, port)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	return c, hostPort, nil
}

func clientHandshake(ctx context.Context, c net.Conn, port uint32) (uint32, error) {
	deadline := time.Now().Add(handshakeTimeout + connectTimeout + time.Second)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		return 0, fmt.Errorf("vsock dial port %d: %w", port, err)
	}
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxOKLine {
		if _, err := c.Read(b); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && ctxDeadline {
				<-ctx.Done() // the deadline was ctx's: it is over now or in a moment
			}
			if ctx.Err() != nil {
				return 0, fmt.Errorf("vsock dial port %d: %w", port, ctx.Err())
			}
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return 0, fmt.Errorf("%w (port %d)", ErrDialRefused, port)
			}
			return 0, fmt.Errorf("vsock dial port %d: %w", port, err)
		}
		if b[0] == '\n' {
			s, ok := strings.CutPrefix(string(line), "OK ")
			n, err := strconv.ParseUint(s, 10, 32)
			if !ok || err != nil {
				return 0, fmt.Errorf("vsock dial port %d: device answered %q", port, line)
			}
			return uint32(n), nil
		}
		line = append(line, b[0])
	}
	return 0, fmt.Errorf("vsock dial port %d: answer longer than %d bytes", port, maxOKLine)
}
