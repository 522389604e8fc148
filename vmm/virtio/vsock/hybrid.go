package vsock

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Host-initiated connections: "CONNECT <port>\n" within handshakeTimeout,
// and the guest must accept within connectTimeout.
const (
	handshakeTimeout = 5 * time.Second
	connectTimeout   = 2 * time.Second
	maxHandshakeLine = 32
)

// accept takes host processes' connections until Close.
func (d *Device) accept() {
	for {
		sock, err := d.listener.Accept()
		if err != nil {
			return // closed
		}
		d.wg.Go(func() { d.handshake(sock) })
	}
}

// handshake reads "CONNECT <port>\n" and asks the guest to accept a
// connection to that port from a fresh host port.
func (d *Device) handshake(sock net.Conn) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		sock.Close()
		return
	}
	d.handshakes[sock] = struct{}{}
	d.mu.Unlock()
	port, err := readConnect(sock)
	d.mu.Lock()
	delete(d.handshakes, sock)
	if err != nil {
		d.mu.Unlock()
		d.log.Debug("vsock: bad host handshake", "err", err)
		sock.Close()
		return
	}
	if d.closed || d.qs.Load() == nil || len(d.conns) >= MaxConns {
		d.mu.Unlock()
		sock.Close()
		return
	}
	k := connKey{local: d.allocPortLocked(), peer: port}
	c := d.newConnLocked(k, stateConnecting)
	c.sock = sock
	c.ctl |= ctlRequest
	d.queueLocked(c)
	d.mu.Unlock()
	d.flushRX()

	time.AfterFunc(connectTimeout, func() {
		d.mu.Lock()
		if !c.closed && c.state == stateConnecting {
			d.rstLocked(c)
		}
		d.mu.Unlock()
		d.flushRX()
	})
}

// readConnect reads the handshake line. It reads byte by byte so that no
// data after the line is consumed.
func readConnect(sock net.Conn) (uint32, error) {
	sock.SetReadDeadline(time.Now().Add(handshakeTimeout))
	defer sock.SetReadDeadline(time.Time{})
	r := bufio.NewReaderSize(oneByteReader{sock}, 16)
	var line []byte
	for len(line) <= maxHandshakeLine {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if b == '\n' {
			break
		}
		line = append(line, b)
	}
	s, ok := strings.CutPrefix(string(line), "CONNECT ")
	if !ok {
		return 0, fmt.Errorf("handshake %q: want CONNECT <port>", line)
	}
	port, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("handshake %q: %w", line, err)
	}
	return uint32(port), nil
}

// oneByteReader reads one byte at a time, so a buffered reader over it
// never reads past what it returns.
type oneByteReader struct{ c net.Conn }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.c.Read(p)
}

// allocPortLocked returns a host port no connection uses.
// Preconditions: d.mu is held.
func (d *Device) allocPortLocked() uint32 {
	for {
		p := d.nextPort
		d.nextPort++
		if d.nextPort == 0 {
			d.nextPort = firstHostPort
		}
		used := false
		for k := range d.conns {
			if k.local == p {
				used = true
				break
			}
		}
		if !used {
			return p
		}
	}
}
