package vsock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenHost listens where the device connects guest connections to host
// port p.
func listenHost(t *testing.T, g *testGuest, port uint32) net.Listener {
	t.Helper()
	l, err := net.Listen("unix", fmt.Sprintf("%s_%d", g.uds, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	l.(*net.UnixListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGuestConnectsToTheHost(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	g.send(guestHeader(opRequest, 1234, 5000), nil)
	host := accept(t, l)
	h, _ := g.expect(opResponse)
	if h.srcPort != 5000 || h.dstPort != 1234 {
		t.Fatalf("response %+v", h)
	}
	// Guest to host.
	g.send(guestHeader(opRW, 1234, 5000), []byte("hello host"))
	if got := readAll(t, host, 10); string(got) != "hello host" {
		t.Fatalf("host read %q", got)
	}
	// The device tells the guest it has forwarded the bytes.
	if h, _ := g.expect(opCreditUpdate); h.fwdCnt != 10 {
		t.Errorf("credit update with fwd_cnt %d, want 10", h.fwdCnt)
	}
	// Host to guest.
	host.Write([]byte("hello guest"))
	if _, p := g.expect(opRW); string(p) != "hello guest" {
		t.Fatalf("guest got %q", p)
	}
	// The host closes: the guest hears SHUTDOWN and answers RST.
	host.Close()
	g.expect(opShutdown)
	g.send(guestHeader(opRST, 1234, 5000), nil)
	g.expectNothing()
	if n := g.conns(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

func (g *testGuest) conns() int {
	g.dev.mu.Lock()
	defer g.dev.mu.Unlock()
	return len(g.dev.conns)
}

func TestGuestClosesFirst(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	g.send(guestHeader(opRequest, 1234, 5000), nil)
	host := accept(t, l)
	g.expect(opResponse)
	g.send(guestHeader(opRW, 1234, 5000), []byte("last words"))
	shut := guestHeader(opShutdown, 1234, 5000)
	shut.flags = shutdownRcv | shutdownSend
	g.send(shut, nil)
	// The device answers RST at once, but still delivers what the guest
	// sent before, then closes the host's socket.
	g.expectSkipping(opRST, opCreditUpdate)
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(host)
	if err != nil || string(got) != "last words" {
		t.Fatalf("host read %q, %v; want the last words then EOF", got, err)
	}
}

func TestGuestConnectionRefused(t *testing.T) {
	g := newTestGuest(t)
	g.send(guestHeader(opRequest, 1234, 5001), nil) // nobody listens on _5001
	if h, _ := g.expect(opRST); h.srcPort != 5001 || h.dstPort != 1234 {
		t.Fatalf("reset %+v", h)
	}
	if g.conns() != 0 {
		t.Error("refused connection kept")
	}
}

// connectFromHost does the hybrid handshake's first half and returns the
// host's socket and the guest's view of the REQUEST.
func connectFromHost(t *testing.T, g *testGuest, port uint32) (net.Conn, header) {
	t.Helper()
	c, err := net.Dial("unix", g.uds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %d\n", port)
	h, _ := g.expect(opRequest)
	if h.dstPort != port || h.srcPort < firstHostPort {
		t.Fatalf("request %+v", h)
	}
	return c, h
}

func TestHostConnectsToTheGuest(t *testing.T) {
	g := newTestGuest(t)
	host, req := connectFromHost(t, g, 6000)
	g.send(guestHeader(opResponse, 6000, req.srcPort), nil)
	want := fmt.Sprintf("OK %d\n", req.srcPort)
	if got := readAll(t, host, len(want)); string(got) != want {
		t.Fatalf("host read %q, want %q", got, want)
	}
	host.Write([]byte("ping"))
	if _, p := g.expect(opRW); string(p) != "ping" {
		t.Fatalf("guest got %q", p)
	}
	g.send(guestHeader(opRW, 6000, req.srcPort), []byte("pong"))
	if got := readAll(t, host, 4); string(got) != "pong" {
		t.Fatalf("host read %q", got)
	}
}

func TestGuestRefusesTheHost(t *testing.T) {
	g := newTestGuest(t)
	host, req := connectFromHost(t, g, 6001)
	g.send(guestHeader(opRST, 6001, req.srcPort), nil)
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(host); err != nil || len(b) != 0 {
		t.Fatalf("host read %q, %v; want EOF", b, err)
	}
}

func TestBadHandshakesAreClosed(t *testing.T) {
	for _, line := range []string{"HELLO 1\n", "CONNECT x\n", "CONNECT 99999999999\n", strings.Repeat("A", 100)} {
		t.Run(strings.TrimSpace(line[:min(len(line), 12)]), func(t *testing.T) {
			g := newTestGuest(t)
			c, err := net.Dial("unix", g.uds)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte(line))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			// EOF, or a reset when the device closed with our bytes unread.
			b, err := io.ReadAll(c)
			var ne net.Error
			if len(b) != 0 || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("read %q, %v; want the socket closed", b, err)
			}
			g.expectNothing()
		})
	}
}

func TestProtocolViolationsAreReset(t *testing.T) {
	tests := []struct {
		name   string
		packet func(g *testGuest) (header, []byte)
		rst    bool // the device answers RST (else it drops the packet)
	}{
		{"data on an unknown connection", func(*testGuest) (header, []byte) {
			return guestHeader(opRW, 1, 2), []byte("x")
		}, true},
		{"unknown operation", func(*testGuest) (header, []byte) { return guestHeader(99, 1, 2), nil }, true},
		{"seqpacket (not offered)", func(*testGuest) (header, []byte) {
			h := guestHeader(opRequest, 1, 2)
			h.typ = 2
			return h, nil
		}, true},
		{"RST for an unknown connection", func(*testGuest) (header, []byte) { return guestHeader(opRST, 1, 2), nil }, false},
		{"spoofed source CID", func(*testGuest) (header, []byte) {
			h := guestHeader(opRW, 1, 2)
			h.srcCID = 7
			return h, []byte("x")
		}, false},
		{"to another guest", func(*testGuest) (header, []byte) {
			h := guestHeader(opRequest, 1, 2)
			h.dstCID = 4
			return h, nil
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuest(t)
			g.send(tt.packet(g))
			if tt.rst {
				g.expect(opRST)
			} else {
				g.expectNothing()
			}
		})
	}
}

func TestDataBeyondTheCreditResets(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	g.send(guestHeader(opRequest, 1234, 5000), nil)
	host := accept(t, l)
	g.expect(opResponse)
	// Nobody reads on the host side, so the device's buffer fills: one
	// packet past the advertised buf_alloc is a violation.
	chunk := bytes.Repeat([]byte{'x'}, 32<<10)
	sent := 0
	for sent+len(chunk) <= ConnBuffer {
		g.send(guestHeader(opRW, 1234, 5000), chunk)
		sent += len(chunk)
	}
	_ = host
	// The writer may already have moved some to the socket; push until
	// the device must refuse.
	deadline := time.Now().Add(5 * time.Second)
	for g.conns() == 1 && time.Now().Before(deadline) {
		g.send(guestHeader(opRW, 1234, 5000), bytes.Repeat([]byte{'y'}, 64<<10))
	}
	if g.conns() != 0 {
		t.Fatal("a guest exceeding its credit was not reset")
	}
	g.expectSkipping(opRST, opCreditUpdate)
}

func TestHostDataWaitsForGuestCredit(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	req := guestHeader(opRequest, 1234, 5000)
	req.bufAlloc = 8 // the guest can take 8 bytes
	g.send(req, nil)
	host := accept(t, l)
	g.expect(opResponse)
	host.Write([]byte("0123456789abcdef"))
	if _, p := g.expect(opRW); string(p) != "01234567" {
		t.Fatalf("first chunk %q, want the 8 bytes of credit", p)
	}
	g.expectNothing()
	// The guest consumed them: a credit update lets the rest through.
	upd := guestHeader(opCreditUpdate, 1234, 5000)
	upd.bufAlloc, upd.fwdCnt = 8, 8
	g.send(upd, nil)
	if _, p := g.expect(opRW); string(p) != "89abcdef" {
		t.Fatalf("second chunk %q", p)
	}
}

func TestCreditRequestIsAnswered(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	g.send(guestHeader(opRequest, 1234, 5000), nil)
	accept(t, l)
	g.expect(opResponse)
	g.send(guestHeader(opCreditRequest, 1234, 5000), nil)
	if h, _ := g.expect(opCreditUpdate); h.bufAlloc != ConnBuffer {
		t.Fatalf("credit update %+v", h)
	}
}

func TestResetEndsEveryConnection(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	g.send(guestHeader(opRequest, 1234, 5000), nil)
	host := accept(t, l)
	g.expect(opResponse)
	g.dev.Reset()
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := host.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("host read after reset: %v, want EOF", err)
	}
	if g.conns() != 0 {
		t.Error("connections survived the reset")
	}
}

func TestTooManyConnections(t *testing.T) {
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for i := range uint32(MaxConns) {
		g.send(guestHeader(opRequest, 10000+i, 5000), nil)
		g.expect(opResponse)
	}
	g.send(guestHeader(opRequest, 99999, 5000), nil)
	if h, _ := g.expect(opRST); h.dstPort != 99999 {
		t.Fatalf("reset %+v", h)
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{
		{CID: 2, UDSPath: dir + "/a"},
		{CID: 1 << 32, UDSPath: dir + "/b"},
		{CID: 3},
		{CID: 3, UDSPath: dir + "/missing/dir/c"},
	} {
		if d, err := New(cfg); err == nil {
			d.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestGuestHalfClose(t *testing.T) {
	// SHUTDOWN with only SEND: the host reads the data, then EOF, and can
	// still answer; the guest's full close later ends it.
	g := newTestGuest(t)
	l := listenHost(t, g, 5000)
	g.send(guestHeader(opRequest, 1234, 5000), nil)
	host := accept(t, l)
	g.expect(opResponse)
	g.send(guestHeader(opRW, 1234, 5000), []byte("request"))
	half := guestHeader(opShutdown, 1234, 5000)
	half.flags = shutdownSend
	g.send(half, nil)
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(host)
	if err != nil || string(got) != "request" {
		t.Fatalf("host read %q, %v; want the request then EOF", got, err)
	}
	host.Write([]byte("response"))
	for {
		h := g.expectSkipping(opRW, opCreditUpdate)
		if h.len > 0 {
			break
		}
	}
	full := guestHeader(opShutdown, 1234, 5000)
	full.flags = shutdownSend | shutdownRcv
	g.send(full, nil)
	g.expectSkipping(opRST, opCreditUpdate)
	if g.conns() != 0 {
		t.Error("connection kept after the guest's full shutdown")
	}
}

func TestDial(t *testing.T) {
	g := newTestGuest(t)
	type result struct {
		c        net.Conn
		hostPort uint32
		err      error
	}
	res := make(chan result, 1)
	go func() {
		c, p, err := Dial(context.Background(), g.uds, 7000)
		res <- result{c, p, err}
	}()
	req, _ := g.expect(opRequest)
	if req.dstPort != 7000 {
		t.Fatalf("request %+v", req)
	}
	g.send(guestHeader(opResponse, 7000, req.srcPort), nil)
	r := <-res
	if r.err != nil || r.hostPort != req.srcPort {
		t.Fatalf("Dial = port %d, %v; want port %d", r.hostPort, r.err, req.srcPort)
	}
	defer r.c.Close()
	r.c.Write([]byte("back"))
	if _, p := g.expect(opRW); string(p) != "back" {
		t.Fatalf("guest got %q", p)
	}
	// Everything after OK is the guest's.
	g.send(guestHeader(opRW, 7000, req.srcPort), []byte("hello"))
	if got := readAll(t, r.c, 5); string(got) != "hello" {
		t.Fatalf("host read %q", got)
	}
}

func TestDialRefused(t *testing.T) {
	g := newTestGuest(t)
	res := make(chan error, 1)
	go func() {
		_, _, err := Dial(context.Background(), g.uds, 7001)
		res <- err
	}()
	req, _ := g.expect(opRequest)
	g.send(guestHeader(opRST, 7001, req.srcPort), nil)
	if err := <-res; !errors.Is(err, ErrDialRefused) {
		t.Fatalf("Dial = %v, want ErrDialRefused", err)
	}
}

func TestDialContext(t *testing.T) {
	g := newTestGuest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// The guest never answers: the context ends the handshake.
	start := time.Now()
	if _, _, err := Dial(ctx, g.uds, 7002); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Dial took %v after its context ended", d)
	}
	if _, _, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none"), 1); err == nil {
		t.Error("Dial to a missing socket succeeded")
	}
}
