package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/runtime/virt"
)

func TestDebugConsoleSocket(t *testing.T) {
	state := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(state, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mk("k8s.io/linuxpod")
	mk("k8s.io/offpod/virt")
	mk("k8s.io/onpod/virt")
	mk("default/twice")
	mk("k8s.io/twice")
	sock := filepath.Join(state, "k8s.io/onpod/virt", virt.DebugConsoleSocket)
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns, id string
		want   error
		says   string
	}{
		{"", "nosuch", errdefs.ErrNotFound, "no pod nosuch"},
		{"default", "linuxpod", errdefs.ErrNotFound, "no pod linuxpod in namespace default"},
		{"", "../k8s.io", errdefs.ErrInvalidArgument, "pod id"},
		{"", "linuxpod", errdefs.ErrFailedPrecondition, "not a VM pod"},
		{"", "offpod", errdefs.ErrFailedPrecondition, "debug console is off for pod offpod: set [virt] debug_console = true"},
		{"", "twice", errdefs.ErrInvalidArgument, "--namespace"},
	} {
		_, err := debugConsoleSocket(state, tc.ns, tc.id)
		if !errors.Is(err, tc.want) || err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s/%s: %v, want %v saying %q", tc.ns, tc.id, err, tc.want, tc.says)
		}
	}
	for _, ns := range []string{"", "k8s.io"} {
		got, err := debugConsoleSocket(state, ns, "onpod")
		if err != nil || got != sock {
			t.Errorf("onpod (namespace %q): %q, %v; want %q", ns, got, err, sock)
		}
	}
}

// fakeShim serves a console socket whose "guest" answers answer and then
// echoes what it is sent, upper-cased, until a ^D.
func fakeShim(t *testing.T, answer byte) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "debug.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, _, err := api.ReadConsoleHeader(c); err != nil {
			t.Errorf("fake shim: %v", err)
			return
		}
		if _, err := c.Write([]byte{answer}); err != nil || answer != api.ConsoleOpen {
			return
		}
		buf := make([]byte, api.MaxConsoleFrame)
		for {
			kind, p, err := api.ReadConsoleFrame(c, buf)
			if err != nil || kind != api.ConsoleData {
				return
			}
			_, _ = c.Write(bytes.ToUpper(p))
			if bytes.IndexByte(p, 4) >= 0 {
				return
			}
		}
	}()
	return sock
}

func TestDebugConsolePipe(t *testing.T) {
	sock := fakeShim(t, api.ConsoleOpen)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.WriteString("echo hi\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var out, msgs bytes.Buffer
	if err := debugConsole(context.Background(), sock, r, &out, &msgs); err != nil {
		t.Fatal(err)
	}
	// Without a terminal the input's end is sent as ^D.
	if got := out.String(); got != "ECHO HI\n\n\x04" {
		t.Errorf("output %q, want the input upper-cased and a ^D", got)
	}
}

func TestDebugConsoleRefused(t *testing.T) {
	for a, says := range map[byte]string{api.ConsoleOff: "debug_console = false", api.ConsoleBusy: "too many", 9: "not a console answer"} {
		sock := fakeShim(t, a)
		r, w, _ := os.Pipe()
		err := debugConsole(context.Background(), sock, r, &bytes.Buffer{}, &bytes.Buffer{})
		r.Close()
		w.Close()
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("answer %d: %v, want an error saying %q", a, err, says)
		}
	}
	// A shim that is gone (its socket left behind).
	sock := filepath.Join(t.TempDir(), "debug.sock")
	os.WriteFile(sock, nil, 0o600)
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	if err := debugConsole(context.Background(), sock, r, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "is the pod running") {
		t.Errorf("a dead shim: %v", err)
	}
}

// TestDebugConsoleTerminal: on a terminal huskctl sends its size in the
// header, goes raw (a byte typed is sent at once, not at the line's end),
// sends a resize on SIGWINCH, and gives the terminal back as it was.
func TestDebugConsoleTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	before, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "debug.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type seen struct {
		rows, cols uint16
		resized    [2]uint16
		data       string
		err        error
	}
	got := make(chan seen, 1)
	ready := make(chan struct{})
	go func() {
		var s seen
		defer func() { got <- s }()
		c, err := l.Accept()
		if err != nil {
			s.err = err
			return
		}
		defer c.Close()
		if s.rows, s.cols, s.err = api.ReadConsoleHeader(c); s.err != nil {
			return
		}
		if _, s.err = c.Write([]byte{api.ConsoleOpen}); s.err != nil {
			return
		}
		close(ready)
		buf := make([]byte, api.MaxConsoleFrame)
		for s.resized[0] == 0 || s.data == "" {
			kind, p, err := api.ReadConsoleFrame(c, buf)
			if err != nil {
				s.err = err
				return
			}
			if kind == api.ConsoleResize {
				s.resized[0], s.resized[1] = api.ConsoleSize(p)
			} else {
				s.data += string(p)
			}
		}
		_, _ = c.Write([]byte("bye\r\n"))
	}()
	done := make(chan error, 1)
	var out, msgs bytes.Buffer
	go func() { done <- debugConsole(context.Background(), sock, tty, &out, &msgs) }()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no console")
	}
	// Raw mode comes once the answer is read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := term.GetState(int(tty.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the terminal never went raw")
		}
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	if _, err := ptmx.Write([]byte("q")); err != nil { // no newline: raw mode sends it
		t.Fatal(err)
	}
	// The SIGWINCH handler comes just after raw mode: signal until the
	// resize is seen.
	var s seen
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
			t.Fatal(err)
		}
		select {
		case s = <-got:
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the fake shim saw no resize or no data")
			}
			continue
		}
		break
	}
	if err := <-done; err != nil {
		t.Fatalf("debugConsole: %v", err)
	}
	if s.err != nil || s.rows != 30 || s.cols != 100 || s.resized != [2]uint16{40, 120} || s.data != "q" {
		t.Errorf("the shim saw %+v; want 30x100, a resize to 40x120 and \"q\"", s)
	}
	if out.String() != "bye\r\n" {
		t.Errorf("output %q", out.String())
	}
	after, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error("the terminal was not given back as it was")
	}
}
