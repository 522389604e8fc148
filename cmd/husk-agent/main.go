// Command husk-agent is the guest agent: PID 1 of a VirtContainer's VM. It
// mounts what the guest needs, loads the image's kernel modules, and serves
// the host's calls (agent/api) on vsock, and on the virtio-serial port
// named husk.agent where the VM has one (agent/serial: a host without
// vsock), running the pod's containers with husk's Linux engine. It must
// be static: the guest image holds nothing else (make guest builds it).
//
// Outside a VM, for tests and development, -listen and -streams name Unix
// sockets instead, and nothing of the machine is touched.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent"
	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/serial"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/linux"
)

// init keeps the main thread to main's goroutine, for the reason the
// shim's main gives: libcontainer leaves a thread locked in a container's
// mount namespace, and Go would park the main thread there.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == linux.InitArg {
		linux.Init() // a container's init, re-executed by libcontainer
	}
	if len(os.Args) > 1 && os.Args[1] == agent.PodPIDArg {
		agent.HoldPIDNamespace() // PID 1 of a pod's shared PID namespace
	}
	if len(os.Args) > 1 && os.Args[1] == agent.DebugShellArg {
		os.Exit(agent.RunDebugShell(os.Stdin, os.Stdout)) // a debug console's shell
	}
	listen := flag.String("listen", "", "serve the agent API on this Unix socket instead of vsock (outside a VM)")
	streams := flag.String("streams", "", "attach stdio streams on this Unix socket instead of vsock (outside a VM)")
	state := flag.String("state", "/run/husk-agent", "directory for the containers' bundles and state")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := logging.NewText(os.Stderr, level).With("component", "husk-agent")
	ctx := logging.WithLogger(context.Background(), log)
	guest := os.Getpid() == 1
	err := run(ctx, guest, *listen, *streams, *state)
	if !guest {
		if err != nil {
			fmt.Fprintln(os.Stderr, "husk-agent:", err)
			os.Exit(1)
		}
		return
	}
	// PID 1 must not exit (the kernel would panic): end the VM instead.
	log.Error("agent stopped; powering off", "error", err)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func run(ctx context.Context, guest bool, listen, streams, state string) error {
	if guest {
		if err := agent.Boot(ctx); err != nil {
			return fmt.Errorf("boot: %w", err)
		}
		// Orphans of every container end up here.
		go reaper.Run(ctx)
	}
	// The debug console is the VM's to allow, at boot: only husk puts
	// its word on the kernel command line ([virt] debug_console).
	console := false
	if guest {
		cmdline, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return fmt.Errorf("reading the kernel command line: %w", err)
		}
		console = agent.DebugConsoleEnabled(string(cmdline))
		logging.L(ctx).Info("debug console", "enabled", console)
	}
	svc, err := agent.New(agent.Options{StateDir: state, Guest: guest, DebugConsole: console})
	if err != nil {
		return err
	}
	var ls agent.Listeners
	agentL, err := listener(listen, api.AgentPort)
	if err == nil {
		streamL, serr := listener(streams, api.StreamPort)
		if serr != nil {
			agentL.Close()
		}
		err = serr
		if err == nil {
			ls.Agent, ls.Streams = append(ls.Agent, agentL), append(ls.Streams, streamL)
			logging.L(ctx).Info("serving", "agent", agentL.Addr().String(), "streams", streamL.Addr().String(), "guest", guest)
		}
	}
	if err == nil && guest {
		// Port forwarding only in a VM: outside, the host's ports are
		// not the agent's to hand out.
		if fl, ferr := listener("", api.ForwardPort); ferr == nil {
			ls.Forward = append(ls.Forward, fl)
		} else {
			logging.L(ctx).Warn("no port forwarding over vsock", "error", ferr)
		}
		// The console port is served even when the console is off, to
		// answer that it is (api.ConsoleOff).
		if cl, cerr := listener("", api.DebugConsolePort); cerr == nil {
			ls.Console = append(ls.Console, cl)
		} else {
			logging.L(ctx).Warn("no debug console over vsock", "error", cerr)
		}
	}
	if !guest {
		if err != nil {
			return err
		}
		return svc.Serve(ctx, ls.Agent[0], ls.Streams[0])
	}
	// A VM without vsock has the serial port, which must come within
	// serialWait; one with vsock is served on the port too if it comes,
	// without waiting for it.
	srv := serial.NewServer(api.AgentPort, api.StreamPort, api.ForwardPort, api.DebugConsolePort)
	ls.Agent, ls.Streams = append(ls.Agent, srv.Listener(api.AgentPort)), append(ls.Streams, srv.Listener(api.StreamPort))
	ls.Forward = append(ls.Forward, srv.Listener(api.ForwardPort))
	ls.Console = append(ls.Console, srv.Listener(api.DebugConsolePort))
	serveSerial := func(port string) {
		logging.L(ctx).Info("serving", "serial", port, "guest", guest)
		_ = srv.Serve(ctx, serial.DevicePort(port))
	}
	if err != nil {
		logging.L(ctx).Warn("no vsock; looking for the serial port", "error", err, "port", serial.PortName)
		port, perr := serial.WaitPort(ctx, serial.PortName, serialWait)
		if perr != nil {
			return fmt.Errorf("no channel to the host: %w; and %w", err, perr)
		}
		go serveSerial(port)
	} else {
		go func() {
			if port, err := serial.WaitPort(ctx, serial.PortName, serialWait); err == nil {
				serveSerial(port)
			}
		}()
	}
	return svc.ServeAll(ctx, ls)
}

// serialWait is how long the guest looks for the serial port: the driver
// adds it, and learns its name, after it loads.
const serialWait = 10 * time.Second

// listener listens on the Unix socket path, or on vsock port when path is
// empty. The vsock transport's module may still be settling just after it
// was loaded: a refused listen is retried for a while.
func listener(path string, port uint32) (net.Listener, error) {
	if path != "" {
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%q: want an absolute Unix socket path", path)
		}
		_ = os.Remove(path)
		return net.Listen("unix", path)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := vsock.Listen(port, nil)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("listening on vsock port %d: %w", port, err)
			}
			return l, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
