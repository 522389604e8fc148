package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestForwardHeaderRoundTrip(t *testing.T) {
	for _, port := range []uint16{1, 80, 8080, 65535} {
		var b bytes.Buffer
		if err := WriteForwardHeader(&b, port); err != nil {
			t.Fatal(err)
		}
		if b.Len() != ForwardHeaderSize {
			t.Fatalf("header of %d bytes, want %d", b.Len(), ForwardHeaderSize)
		}
		got, err := ReadForwardHeader(&b)
		if err != nil || got != port {
			t.Fatalf("read %d, %v; want %d", got, err, port)
		}
	}
	if err := WriteForwardHeader(io.Discard, 0); !errors.Is(err, ErrBadForwardHeader) {
		t.Fatalf("port 0 written: %v", err)
	}
}

func TestForwardHeaderRefusesGarbage(t *testing.T) {
	for name, h := range map[string][]byte{
		"short":    []byte("HSKF\x00\x00\x1f"),
		"magic":    []byte("HSK1\x00\x00\x1f\x90"),
		"reserved": []byte("HSKF\x00\x01\x1f\x90"),
		"port 0":   []byte("HSKF\x00\x00\x00\x00"),
	} {
		if _, err := ReadForwardHeader(bytes.NewReader(h)); err == nil {
			t.Errorf("%s: %q accepted", name, h)
		} else if name != "short" && !errors.Is(err, ErrBadForwardHeader) {
			t.Errorf("%s: %v, want ErrBadForwardHeader", name, err)
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// relayed starts Relay between two TCP connections and returns their far
// ends and a channel closed when Relay returns.
func relayed(t *testing.T, ctx context.Context, grace time.Duration) (client, server net.Conn, done chan struct{}) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	done = make(chan struct{})
	go func() {
		Relay(ctx, a, b, grace)
		close(done)
	}()
	return client, server, done
}

func TestRelayCarriesBothWaysAndHalfClose(t *testing.T) {
	client, server, done := relayed(t, context.Background(), 10*time.Second)
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// The client half-closes: the server reads the request, then EOF, and
	// can still answer.
	client.(*net.TCPConn).CloseWrite()
	req, err := io.ReadAll(server)
	if err != nil || string(req) != "ping" {
		t.Fatalf("server read %q, %v", req, err)
	}
	if _, err := server.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	server.Close()
	resp, err := io.ReadAll(client)
	if err != nil || string(resp) != "pong" {
		t.Fatalf("client read %q, %v", resp, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Relay did not return after both sides finished")
	}
}

func TestRelayEndsAfterGrace(t *testing.T) {
	client, server, done := relayed(t, context.Background(), 100*time.Millisecond)
	client.(*net.TCPConn).CloseWrite()
	// The server never finishes: the grace ends the relay and closes the
	// client's side too.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Relay outlived its grace")
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("client: %v, want EOF", err)
	}
	_ = server
}

func TestRelayEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client, _, done := relayed(t, ctx, time.Hour)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Relay outlived its context")
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("client: %v, want EOF", err)
	}
}

// FuzzForwardHeader checks that any bytes either give a port that writes
// back to the same 8 bytes, or an error; never a panic.
func FuzzForwardHeader(f *testing.F) {
	f.Add([]byte("HSKF\x00\x00\x1f\x90"))
	f.Add([]byte("HSKF\x00\x00\x00\x00"))
	f.Add([]byte("HSKF\x01\x00\xff\xff"))
	f.Add([]byte("HSK"))
	f.Fuzz(func(t *testing.T, in []byte) {
		port, err := ReadForwardHeader(bytes.NewReader(in))
		if err != nil {
			if port != 0 {
				t.Fatalf("error %v with port %d", err, port)
			}
			return
		}
		if port == 0 {
			t.Fatal("port 0 accepted")
		}
		var buf bytes.Buffer
		if err := WriteForwardHeader(&buf, port); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in[:ForwardHeaderSize]) {
			t.Fatalf("read % x as port %d, which writes as % x", in[:ForwardHeaderSize], port, buf.Bytes())
		}
	})
}
