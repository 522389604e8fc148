package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

func TestDebugConsoleEnabled(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"", false},
		{"console=ttyS0 reboot=k panic=-1 quiet", false},
		{"console=ttyS0 husk.debug_console=1 quiet\n", true},
		{"husk.debug_console=0", false},
		{"husk.debug_console=yes", false},
		{"husk.debug_console", false},
		{"husk.debug_console=1 husk.debug_console=0", false}, // the last word counts
		{"husk.debug_console=0 husk.debug_console=1", true},
		{"xhusk.debug_console=1", false},
	} {
		if got := DebugConsoleEnabled(tc.cmdline); got != tc.want {
			t.Errorf("DebugConsoleEnabled(%q) = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}

// serveConsoles serves c on a Unix socket until the test ends and returns
// a dialer of it.
func serveConsoles(t *testing.T, c *consoles) func() net.Conn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return func() net.Conn {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		return conn
	}
}

// openConsole sends a header and returns the agent's answer.
func openConsole(t *testing.T, conn net.Conn, rows, cols uint16) byte {
	t.Helper()
	if err := api.WriteConsoleHeader(conn, rows, cols); err != nil {
		t.Fatal(err)
	}
	var a [1]byte
	if _, err := io.ReadFull(conn, a[:]); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return a[0]
}

// countingShell is /bin/sh, counting its starts.
func countingShell(n *atomic.Int32) func() *exec.Cmd {
	return func() *exec.Cmd {
		n.Add(1)
		return exec.Command("/bin/sh")
	}
}

func TestConsoleOffRefuses(t *testing.T) {
	var starts atomic.Int32
	dial := serveConsoles(t, newConsoles(false, countingShell(&starts)))
	conn := dial()
	if a := openConsole(t, conn, 24, 80); a != api.ConsoleOff {
		t.Fatalf("answer %d, want ConsoleOff (%d)", a, api.ConsoleOff)
	}
	if err := api.ConsoleAnswerError(api.ConsoleOff); err == nil || !strings.Contains(err.Error(), "debug_console") {
		t.Errorf("ConsoleOff's error %v does not name the key", err)
	}
	// Then the agent closes: nothing more comes, whatever the host sends.
	_ = api.WriteConsoleData(conn, []byte("echo hi\n"))
	if n, err := io.Copy(io.Discard, conn); (err != nil && !errors.Is(err, unix.ECONNRESET)) || n != 0 {
		t.Errorf("after the refusal: %d bytes, %v; want the end", n, err)
	}
	if n := starts.Load(); n != 0 {
		t.Errorf("a console that is off started %d shells", n)
	}
}

func TestConsoleRunsShell(t *testing.T) {
	if _, err := exec.LookPath("stty"); err != nil {
		t.Skip("no stty on this host")
	}
	var starts atomic.Int32
	dial := serveConsoles(t, newConsoles(true, countingShell(&starts)))
	conn := dial()
	if a := openConsole(t, conn, 24, 80); a != api.ConsoleOpen {
		t.Fatalf("answer %d: %v", a, api.ConsoleAnswerError(a))
	}
	if err := api.WriteConsoleResize(conn, 33, 101); err != nil {
		t.Fatal(err)
	}
	// The PTY echoes the input: the answers are computed so that only
	// the shell's output has them.
	in := "echo out-$((6*7))\nstty size\ntty\nexit 3\n"
	if err := api.WriteConsoleData(conn, []byte(in)); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("reading the console: %v (%q)", err, out)
	}
	text := strings.ReplaceAll(string(out), "\r\n", "\n")
	for _, want := range []string{"out-42\n", "33 101\n", "/dev/pts/"} {
		if !strings.Contains(text, want) {
			t.Errorf("console output %q lacks %q", text, want)
		}
	}
	if n := starts.Load(); n != 1 {
		t.Errorf("%d shells started, want 1", n)
	}
}

func TestConsoleBounds(t *testing.T) {
	var starts atomic.Int32
	dial := serveConsoles(t, newConsoles(true, countingShell(&starts)))
	var open []net.Conn
	for i := 0; i < maxConsoles; i++ {
		c := dial()
		if a := openConsole(t, c, 0, 0); a != api.ConsoleOpen {
			t.Fatalf("console %d: answer %d", i, a)
		}
		open = append(open, c)
	}
	if a := openConsole(t, dial(), 0, 0); a != api.ConsoleBusy {
		t.Fatalf("console %d: answer %d, want ConsoleBusy", maxConsoles, a)
	}
	// A frame the protocol does not have ends a console (and its shell):
	// its slot is free again.
	if _, err := open[0].Write([]byte{'X', 0, 1, 'a'}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, open[0]); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("the broken console: %v", err)
	}
	// An oversized data frame too.
	big := []byte{api.ConsoleData, 0xff, 0xff}
	if _, err := open[1].Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, open[1]); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("the oversized console: %v", err)
	}
	// The slots come back once the shells are gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dial()
		a := openConsole(t, c, 0, 0)
		c.Close()
		if a == api.ConsoleOpen {
			break
		}
		if a != api.ConsoleBusy || time.Now().After(deadline) {
			t.Fatalf("after two consoles ended: answer %d", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Connections that send no header are bounded: one past the bound
	// is closed at once, and a console opens again once they are gone.
	var idle []net.Conn
	for i := 0; i < maxConsoleHandshakes; i++ {
		idle = append(idle, dial())
	}
	time.Sleep(100 * time.Millisecond) // accepted, each awaiting its header
	extra := dial()
	// Closed at once, not at the header's timeout.
	_ = extra.SetReadDeadline(time.Now().Add(consoleHeaderTimeout / 2))
	if b, err := io.ReadAll(extra); len(b) != 0 || (err != nil && !errors.Is(err, unix.ECONNRESET)) {
		t.Errorf("a connection past the handshake bound: %q, %v; want it closed at once", b, err)
	}
	for _, c := range idle {
		c.Close()
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		c := dial()
		var a [1]byte
		err := api.WriteConsoleHeader(c, 0, 0)
		if err == nil {
			_, err = io.ReadFull(c, a[:])
		}
		c.Close()
		if err == nil && a[0] == api.ConsoleOpen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the idle connections left: answer %d, %v", a[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A header that is not one is closed without an answer.
	c := dial()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); len(b) != 0 {
		t.Errorf("a bad header got %q, %v; want nothing", b, err)
	}
}

// TestConsoleHostLeaves: a host that goes away ends its shell, even one
// that ignores the terminal's hangup.
func TestConsoleHostLeaves(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	dial := serveConsoles(t, newConsoles(true, func() *exec.Cmd {
		return exec.Command("/bin/sh", "-c", "trap '' HUP; echo $$ > "+pidFile+"; echo ready; while :; do sleep 0.1; done")
	}))
	conn := dial()
	if a := openConsole(t, conn, 0, 0); a != api.ConsoleOpen {
		t.Fatalf("answer %d", a)
	}
	buf := make([]byte, 256)
	var got []byte
	for !bytes.Contains(got, []byte("ready")) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the shell: %v (%q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	pid := readPID(t, pidFile)
	conn.Close()
	deadline := time.Now().Add(consoleHangupGrace + 5*time.Second)
	for unix.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("shell %d outlived its host by %v", pid, consoleHangupGrace+5*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := readFileWait(path)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	return pid
}

func readFileWait(path string) ([]byte, error) {
	for i := 0; ; i++ {
		b, err := os.ReadFile(path)
		if err == nil && len(bytes.TrimSpace(b)) > 0 || i > 100 {
			return b, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
