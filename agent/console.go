package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
)

// Bounds of the debug console (api.DebugConsolePort).
const (
	// consoleHeaderTimeout bounds the wait for a console's header.
	consoleHeaderTimeout = 5 * time.Second
	// maxConsoles bounds the consoles open at once: each is a shell and
	// a terminal in the guest.
	maxConsoles = 2
	// maxConsoleHandshakes bounds the connections whose header is
	// awaited at once; one more is closed as it comes.
	maxConsoleHandshakes = 8
	// consoleHangupGrace is how long a shell whose host went away has,
	// after its terminal's hangup, before it is killed.
	consoleHangupGrace = 2 * time.Second
)

// DebugShellArg, as the agent's first argument, makes it the guest's
// built-in debug shell (RunDebugShell): the guest image has no shell of
// its own.
const DebugShellArg = "debug-shell"

// guestShell is the shell a console runs when the guest has one.
const guestShell = "/bin/sh"

// DebugConsoleEnabled says whether the kernel command line cmdline (the
// guest's /proc/cmdline) turns the debug console on: its last
// husk.debug_console word must be api.DebugConsoleParam.
func DebugConsoleEnabled(cmdline string) bool {
	on := false
	name, _, _ := strings.Cut(api.DebugConsoleParam, "=")
	for _, w := range strings.Fields(cmdline) {
		if n, _, _ := strings.Cut(w, "="); n == name {
			on = w == api.DebugConsoleParam
		}
	}
	return on
}

// consoles serves api.DebugConsolePort: each connection gets a shell on a
// terminal of its own, in the guest's namespaces (the agent's: not a
// container's), or a refusal.
type consoles struct {
	enabled bool
	// shell returns the command a console runs; tests replace it.
	shell func() *exec.Cmd
	sem   chan struct{} // a token per console open
	hs    chan struct{} // a token per header awaited
	wg    sync.WaitGroup
}

func newConsoles(enabled bool, shell func() *exec.Cmd) *consoles {
	if shell == nil {
		shell = defaultShell
	}
	return &consoles{enabled: enabled, shell: shell, sem: make(chan struct{}, maxConsoles), hs: make(chan struct{}, maxConsoleHandshakes)}
}

// defaultShell is the guest's /bin/sh where there is one, else the agent
// itself as the built-in debug shell.
func defaultShell() *exec.Cmd {
	if st, err := os.Stat(guestShell); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return exec.Command(guestShell)
	}
	return exec.Command("/proc/self/exe", DebugShellArg)
}

// serve accepts console connections on l until it is closed or ctx ends;
// it returns once every console it opened has ended.
func (c *consoles) serve(ctx context.Context, l net.Listener) error {
	defer c.wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case c.hs <- struct{}{}:
		default:
			logging.L(ctx).Warn("refusing a debug console connection: too many awaiting their header", "limit", maxConsoleHandshakes)
			_ = conn.Close()
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.handle(ctx, conn)
		}()
	}
}

// handle reads conn's header and answers it: a refusal, or a shell.
func (c *consoles) handle(ctx context.Context, conn net.Conn) {
	log := logging.L(ctx)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(consoleHeaderTimeout))
	rows, cols, err := api.ReadConsoleHeader(conn)
	<-c.hs
	if err != nil {
		log.Warn("refusing a debug console", "error", err)
		return
	}
	refuse := func(a byte) { _, _ = conn.Write([]byte{a}) }
	if !c.enabled {
		// Off means off: the VM was booted without the console.
		log.Warn("refusing a debug console: it is off for this VM")
		refuse(api.ConsoleOff)
		return
	}
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	default:
		log.Warn("refusing a debug console: too many", "limit", maxConsoles)
		refuse(api.ConsoleBusy)
		return
	}
	cmd := c.shell()
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "TERM=linux"}
	cmd.Dir = "/"
	own := reaper.Spawn()
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		own(0)
		log.Error("debug console: starting the shell", "shell", cmd.Path, "error", err)
		refuse(api.ConsoleFailed)
		return
	}
	own(cmd.Process.Pid)
	log.Warn("debug console opened", "shell", cmd.Path, "pid", cmd.Process.Pid)
	_ = conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte{api.ConsoleOpen}); err != nil {
		_ = conn.Close() // the copies below end at once, and the shell with them
	}
	pid := cmd.Process.Pid
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		reaper.Release(pid)
		close(exited)
	}()
	// kill ends the shell's whole session (Setsid: its process group).
	kill := func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }
	// The agent's end ends the console.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	// The host's frames go to the terminal; when the host goes away (or
	// breaks the protocol) the terminal hangs up, and a shell that
	// outlives the grace is killed.
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		err := copyFrames(ptmx, conn)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			log.Warn("debug console: the host's stream", "error", err)
		}
		_ = ptmx.Close()
		// A read of the terminal may hold its master open: the hangup
		// is sent to the shell's session too.
		_ = syscall.Kill(-pid, syscall.SIGHUP)
		select {
		case <-exited:
		case <-time.After(consoleHangupGrace):
			kill()
		}
	}()
	// The terminal's output goes to the host until the shell (and every
	// process holding the terminal) is gone: then the terminal reads EIO.
	_, _ = io.Copy(conn, ptmx)
	select {
	case <-exited:
	case <-time.After(consoleHangupGrace):
		kill()
		<-exited
	}
	_ = conn.Close()
	_ = ptmx.Close()
	<-inDone
	err = waitErr
	log.Warn("debug console closed", "pid", pid, "exit", exitText(err))
}

// copyFrames writes the data of the frames read from conn to ptmx and
// applies their resizes, until conn ends or breaks the protocol.
func copyFrames(ptmx *os.File, conn io.Reader) error {
	buf := make([]byte, api.MaxConsoleFrame)
	for {
		kind, p, err := api.ReadConsoleFrame(conn, buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch kind {
		case api.ConsoleData:
			if _, err := ptmx.Write(p); err != nil {
				return err
			}
		case api.ConsoleResize:
			rows, cols := api.ConsoleSize(p)
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
				return fmt.Errorf("resizing the terminal: %w", err)
			}
		}
	}
}

// exitText says how a shell ended.
func exitText(err error) string {
	if err == nil {
		return "0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal().String()
		}
		return fmt.Sprint(ee.ExitCode())
	}
	return err.Error()
}
