package virt

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

func TestKernelParamsDebugConsole(t *testing.T) {
	off := kernelParams([]string{"loglevel=7"}, false)
	if slices.Contains(off, api.DebugConsoleParam) {
		t.Errorf("console off: %q has %s", off, api.DebugConsoleParam)
	}
	on := kernelParams([]string{"loglevel=7"}, true)
	if on[len(on)-1] != api.DebugConsoleParam || !slices.Contains(on, "loglevel=7") || on[0] != baseKernelParams[0] {
		t.Errorf("console on: %q, want husk's words, the VM's, then %s", on, api.DebugConsoleParam)
	}
}

// consoleAgent is a fake agent's console port: it answers the header
// with answer and, when it opened, echoes the data frames' bytes.
func consoleAgent(t *testing.T, answer byte) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		host, guest := net.Pipe()
		go func() {
			defer guest.Close()
			if _, _, err := api.ReadConsoleHeader(guest); err != nil {
				t.Errorf("the fake agent: %v", err)
				return
			}
			if _, err := guest.Write([]byte{answer}); err != nil || answer != api.ConsoleOpen {
				return
			}
			buf := make([]byte, api.MaxConsoleFrame)
			for {
				kind, p, err := api.ReadConsoleFrame(guest, buf)
				if err != nil {
					return
				}
				if kind == api.ConsoleData {
					if _, err := guest.Write(p); err != nil {
						return
					}
				}
			}
		}()
		return host, nil
	}
}

func dialConsole(t *testing.T, path string) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := api.WriteConsoleHeader(c, 24, 80); err != nil {
		t.Fatal(err)
	}
	var a [1]byte
	if _, err := io.ReadFull(c, a[:]); err != nil {
		t.Fatalf("the answer: %v", err)
	}
	return c, a[0]
}

func TestDebugConsoleRelay(t *testing.T) {
	dir := t.TempDir()
	d, err := serveDebugConsole(context.Background(), dir, consoleAgent(t, api.ConsoleOpen))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	path := filepath.Join(dir, DebugConsoleSocket)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode().Perm())
	}
	var conns []net.Conn
	for i := 0; i < maxDebugConsoles; i++ {
		c, a := dialConsole(t, path)
		if a != api.ConsoleOpen {
			t.Fatalf("console %d: answer %d", i, a)
		}
		conns = append(conns, c)
	}
	if err := api.WriteConsoleData(conns[0], []byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(conns[0], got); err != nil || string(got) != "ping" {
		t.Fatalf("relayed %q, %v; want ping", got, err)
	}
	// One more than the bound is refused by the shim itself.
	if _, a := dialConsole(t, path); a != api.ConsoleBusy {
		t.Errorf("console %d: answer %d, want ConsoleBusy", maxDebugConsoles, a)
	}
	// Close ends the consoles and removes the socket.
	closed := make(chan struct{})
	go func() { d.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with consoles open")
	}
	for i, c := range conns {
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, unix.ECONNRESET) {
			t.Errorf("console %d after Close: %v", i, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket after Close: %v, want it gone", err)
	}
}

func TestDebugConsoleDialFails(t *testing.T) {
	dir := t.TempDir()
	d, err := serveDebugConsole(context.Background(), dir, func(context.Context) (net.Conn, error) {
		return nil, errors.New("the VM ended")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := net.Dial("unix", filepath.Join(dir, DebugConsoleSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != string([]byte{api.ConsoleUnreachable}) {
		t.Errorf("got %q, %v; want ConsoleUnreachable and the end", b, err)
	}
}

// TestDebugConsoleInFakeVM: the handler on a fake VM (the real agent on
// the host): with [virt] debug_console the shim serves the socket and the
// agent a shell; without, there is no socket and the agent itself
// refuses the port.
func TestDebugConsoleInFakeVM(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.Virt.DebugConsole = true
		e.sandbox()
		c, a := dialConsole(t, filepath.Join(vmDir(e.state), DebugConsoleSocket))
		if a != api.ConsoleOpen {
			t.Fatalf("answer %d: %v", a, api.ConsoleAnswerError(a))
		}
		if err := api.WriteConsoleData(c, []byte("echo in-$((6*7))\nexit\n")); err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, unix.ECONNRESET) {
			t.Fatalf("reading: %v", err)
		}
		if !strings.Contains(string(out), "in-42\r\n") {
			t.Errorf("console output %q lacks in-42", out)
		}
	})
	t.Run("off", func(t *testing.T) {
		e := newEnv(t)
		e.sandbox()
		if _, err := os.Stat(filepath.Join(vmDir(e.state), DebugConsoleSocket)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a pod with the console off has its socket: %v", err)
		}
		e.hv.mu.Lock()
		vm := e.hv.started[0]
		e.hv.mu.Unlock()
		g, err := vm.Dial(context.Background(), api.DebugConsolePort)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		_ = g.SetDeadline(time.Now().Add(10 * time.Second))
		if err := api.WriteConsoleHeader(g, 0, 0); err != nil {
			t.Fatal(err)
		}
		var a [1]byte
		if _, err := io.ReadFull(g, a[:]); err != nil || a[0] != api.ConsoleOff {
			t.Errorf("the agent answered %d, %v; want ConsoleOff", a[0], err)
		}
	})
}
