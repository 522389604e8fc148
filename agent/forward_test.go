package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/huskrt/husk/agent/api"
)

// echoServer answers each connection on 127.0.0.1 with "hello\n" and then
// echoes it.
func echoServer(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("hello\n"))
				io.Copy(c, c)
			}()
		}
	}()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// forwardAgent serves forwards on a Unix socket and returns its path.
func forwardAgent(t *testing.T, f *forwards) (string, context.CancelFunc, chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fwd.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.serve(ctx, l) }()
	t.Cleanup(func() { cancel(); l.Close() })
	context.AfterFunc(ctx, func() { l.Close() })
	return path, cancel, done
}

// askPort dials the agent, asks for port and returns the connection and
// the agent's answer.
func askPort(t *testing.T, path string, port uint16) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := api.WriteForwardHeader(c, port); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatalf("no answer for port %d: %v", port, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, b[0]
}

func TestForwardReachesGuestPort(t *testing.T) {
	port := echoServer(t)
	path, _, _ := forwardAgent(t, newForwards())
	c, answer := askPort(t, path, port)
	if answer != api.ForwardConnected {
		t.Fatalf("answer %d, want connected", answer)
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	c.Write([]byte("again\n"))
	if line, err := r.ReadString('\n'); err != nil || line != "again\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

func TestForwardRefusesAPortNobodyServes(t *testing.T) {
	// A port just closed: nothing listens on it.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	path, _, _ := forwardAgent(t, newForwards())
	c, answer := askPort(t, path, port)
	if answer != api.ForwardRefused {
		t.Fatalf("answer %d, want refused", answer)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after a refusal: %d bytes, %v; want EOF", n, err)
	}
}

func TestForwardDropsABadHeader(t *testing.T) {
	path, _, _ := forwardAgent(t, newForwards())
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed with the request unread: EOF or a reset, never an answer.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("after a bad header: %d bytes, %v; want the connection closed", n, err)
	}
}

func TestForwardBoundsConnections(t *testing.T) {
	port := echoServer(t)
	f := newForwards()
	f.sem = make(chan struct{}, 2)
	path, _, _ := forwardAgent(t, f)
	for i := range 2 {
		if _, answer := askPort(t, path, port); answer != api.ForwardConnected {
			t.Fatalf("connection %d: answer %d", i, answer)
		}
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	api.WriteForwardHeader(c, port)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a third connection over a bound of 2: %d bytes, %v; want it closed", n, err)
	}
}

func TestForwardEndsWithTheAgent(t *testing.T) {
	port := echoServer(t)
	path, cancel, done := forwardAgent(t, newForwards())
	c, answer := askPort(t, path, port)
	if answer != api.ForwardConnected {
		t.Fatalf("answer %d", answer)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return with a connection open")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the forwarded connection: %v, want closed", err)
	}
}

func TestDialGuestPortTriesLoopbackFirst(t *testing.T) {
	port := echoServer(t)
	c, err := dialGuestPort(context.Background(), port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != "127.0.0.1:"+strconv.Itoa(int(port)) {
		t.Fatalf("dialled %s", got)
	}
}
