package virt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
)

// DebugConsoleSocket is the Unix socket, in a VM pod's state directory's
// virt/ (mode 0700, the shim's user's), that `huskctl debug-console`
// dials when [virt] debug_console is on: each connection is carried to
// the agent's api.DebugConsolePort as it is, and speaks its protocol. A
// pod started with the console off has no socket.
const DebugConsoleSocket = "debug.sock"

// Bounds of the host's end of the debug console.
const (
	// maxDebugConsoles bounds the consoles a pod's shim carries at once
	// (the agent has its own bound).
	maxDebugConsoles = 2
	// debugConsoleDial bounds the dial of the agent's console port.
	debugConsoleDial = 30 * time.Second
	// debugConsoleGrace is how long a console one side half-closed
	// waits for the other (api.Relay).
	debugConsoleGrace = 5 * time.Second
	// maxDebugConsoleRefusals bounds the connections refused for being
	// one too many whose header the shim still awaits; past it a
	// connection is closed without an answer.
	maxDebugConsoleRefusals = 8
	// debugConsoleHeader bounds the wait for a refused connection's
	// header.
	debugConsoleHeader = 5 * time.Second
)

// debugConsoles carries the connections to DebugConsoleSocket to the
// guest's api.DebugConsolePort.
type debugConsoles struct {
	l    net.Listener
	dial func(ctx context.Context) (net.Conn, error)
	ctx  context.Context
	stop context.CancelFunc
	sem  chan struct{}
	// refusing holds a slot per connection being refused (refuse).
	refusing chan struct{}
	wg       sync.WaitGroup
}

// debugConsoleDialer dials the agent's console port.
func debugConsoleDialer(vm VM) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) { return vm.Dial(ctx, api.DebugConsolePort) }
}

// serveDebugConsole listens on dir's DebugConsoleSocket (mode 0600) and
// carries its connections to dial's until Close.
func serveDebugConsole(ctx context.Context, dir string, dial func(ctx context.Context) (net.Conn, error)) (*debugConsoles, error) {
	path := filepath.Join(dir, DebugConsoleSocket)
	_ = os.Remove(path) // a dead shim's
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("the debug console's socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("the debug console's socket: %w", err)
	}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d := &debugConsoles{l: l, dial: dial, ctx: cctx, stop: stop, sem: make(chan struct{}, maxDebugConsoles),
		refusing: make(chan struct{}, maxDebugConsoleRefusals)}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.serve()
	}()
	return d, nil
}

func (d *debugConsoles) serve() {
	log := logging.L(d.ctx)
	for {
		c, err := d.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || d.ctx.Err() != nil {
				return
			}
			log.Warn("debug console: accepting", "error", err)
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case d.sem <- struct{}{}:
		default:
			log.Warn("debug console: refusing a connection: too many", "limit", maxDebugConsoles)
			d.refuse(c)
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() { <-d.sem }()
			d.carry(c)
		}()
	}
}

// refuse answers c ConsoleBusy after its header, as the agent answers:
// answering first and closing would let the client's write of its
// header fail (EPIPE) before it could read why.
func (d *debugConsoles) refuse(c net.Conn) {
	select {
	case d.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.refusing }()
		defer c.Close()
		stop := context.AfterFunc(d.ctx, func() { _ = c.Close() })
		defer stop()
		_ = c.SetDeadline(time.Now().Add(debugConsoleHeader))
		if _, _, err := api.ReadConsoleHeader(c); err != nil {
			return
		}
		_, _ = c.Write([]byte{api.ConsoleBusy})
	}()
}

// carry relays c to a new connection to the agent's console port.
func (d *debugConsoles) carry(c net.Conn) {
	log := logging.L(d.ctx)
	log.Warn("debug console: a connection to the guest's shell")
	ctx, cancel := context.WithTimeout(d.ctx, debugConsoleDial)
	g, err := d.dial(ctx)
	cancel()
	if err != nil {
		log.Warn("debug console: dialling the agent", "error", err)
		_, _ = c.Write([]byte{api.ConsoleUnreachable})
		_ = c.Close()
		return
	}
	api.Relay(d.ctx, c, g, debugConsoleGrace)
	log.Info("debug console: connection closed")
}

// Close stops listening, removes the socket, ends every console and
// returns once none is carried.
func (d *debugConsoles) Close() {
	if d == nil {
		return
	}
	d.stop()
	_ = d.l.Close() // a Unix listener removes its socket
	d.wg.Wait()
}
