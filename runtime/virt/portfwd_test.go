package virt

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huskrt/husk/agent/api"
)

// fakeForwardAgent is the guest's end of api.ForwardPort for the
// forwarder's tests: each dial gets a pipe whose far end reads the
// header, answers, and then says which port was asked and echoes.
type fakeForwardAgent struct {
	answer byte // what the agent answers; api.ForwardConnected to serve
	silent bool // answer nothing
	open   atomic.Int32
}

func (a *fakeForwardAgent) dial(ctx context.Context) (net.Conn, error) {
	host, guest := net.Pipe()
	a.open.Add(1)
	go func() {
		defer a.open.Add(-1)
		defer guest.Close()
		port, err := api.ReadForwardHeader(guest)
		if err != nil {
			return
		}
		if a.silent {
			io.Copy(io.Discard, guest)
			return
		}
		if _, err := guest.Write([]byte{a.answer}); err != nil || a.answer != api.ForwardConnected {
			return
		}
		fmt.Fprintf(guest, "guest port %d\n", port)
		io.Copy(guest, guest)
	}()
	return host, nil
}

// startForwarder serves a loopback listener of the host's own with f.
func startForwarder(t *testing.T, a *fakeForwardAgent, limit int) (*portForwarder, string) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := newPortForwarder(context.Background(), a.dial, []net.Listener{l}, limit)
	t.Cleanup(f.Close)
	return f, l.Addr().String()
}

// readLine reads a line from c within a bound.
func readLine(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	return bufio.NewReader(c).ReadString('\n')
}

func TestPortForwarderCarriesTheDialledPort(t *testing.T) {
	a := &fakeForwardAgent{answer: api.ForwardConnected}
	_, addr := startForwarder(t, a, 4)
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, port, _ := net.SplitHostPort(addr)
	if line, err := readLine(t, c); err != nil || line != "guest port "+port+"\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	c.Write([]byte("echo\n"))
	if line, err := readLine(t, c); err != nil || line != "echo\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

func TestPortForwarderClosesOnRefusalOrGarbage(t *testing.T) {
	for name, a := range map[string]*fakeForwardAgent{
		"refused": {answer: api.ForwardRefused},
		"garbage": {answer: 0x7f},
	} {
		t.Run(name, func(t *testing.T) {
			_, addr := startForwarder(t, a, 4)
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
				t.Fatalf("read %q, %v; want the connection closed with nothing", b, err)
			}
		})
	}
}

func TestPortForwarderBoundsConnections(t *testing.T) {
	a := &fakeForwardAgent{answer: api.ForwardConnected}
	_, addr := startForwarder(t, a, 2)
	for i := range 2 {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := readLine(t, c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Fatalf("a third connection over a bound of 2: read %q, %v; want it closed", b, err)
	}
	if n := a.open.Load(); n != 2 {
		t.Fatalf("the agent was dialled for %d connections, want 2", n)
	}
}

func TestPortForwarderCloseEndsEverything(t *testing.T) {
	a := &fakeForwardAgent{answer: api.ForwardConnected}
	f, addr := startForwarder(t, a, 4)
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := readLine(t, c); err != nil {
		t.Fatal(err)
	}
	// A connection still waiting for the agent's answer ends too.
	silent := &fakeForwardAgent{silent: true}
	f2, addr2 := startForwarder(t, silent, 4)
	w, err := net.Dial("tcp4", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	deadline := time.Now().Add(10 * time.Second)
	for silent.open.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		f.Close()
		f2.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with connections open")
	}
	for _, cc := range []net.Conn{c, w} {
		_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(cc); err != nil {
			t.Fatalf("a forwarded connection after Close: %v, want EOF", err)
		}
	}
	for time.Now().Before(deadline) && a.open.Load()+silent.open.Load() != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := a.open.Load() + silent.open.Load(); n != 0 {
		t.Fatalf("%d connections to the agent still open after Close", n)
	}
	if _, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}
