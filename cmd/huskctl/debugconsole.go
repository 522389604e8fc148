package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/term"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/virt"
)

// debugConsoleAnswer bounds the wait for the agent's answer: the shim
// dials the guest (slow on an emulated, TCG, guest under load) and the
// agent starts a shell.
const debugConsoleAnswer = 60 * time.Second

// runDebugConsole connects the terminal to a shell in a VM pod's guest,
// through the pod's shim and its agent ([virt] debug_console).
func runDebugConsole(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("debug-console", flag.ContinueOnError)
	pf := addPodFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: huskctl debug-console [--namespace NS] <pod id>

Opens a shell in a VM pod's guest, in the guest's own namespaces (not a
container's), as root. The pod must have been started with
[virt] debug_console = true. "exit" (or ^D) ends it. With a terminal,
the terminal is put in raw mode and its size follows; without one,
the input is sent as it is and its end ends the shell.`)
		fs.PrintDefaults()
	}
	stateDir, id, err := pf.parse(fs, args)
	if err != nil {
		return err
	}
	sock, err := debugConsoleSocket(stateDir, *pf.ns, id)
	if err != nil {
		return err
	}
	return debugConsole(ctx, sock, os.Stdin, os.Stdout, os.Stderr)
}

// debugConsoleSocket finds the debug console's socket of pod id, in
// namespace ns or, when ns is empty, in whichever namespace has the pod.
// It says why not: no such pod, not a VM pod, the console off.
func debugConsoleSocket(stateDir, ns, id string) (string, error) {
	dir, err := podDir(stateDir, ns, id)
	if err != nil {
		return "", err
	}
	vdir := filepath.Join(dir, vocab.Virt)
	if st, err := os.Stat(vdir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("pod %s is not a VM pod (its handler is not %s): a debug console enters a VM's guest; `crictl exec` enters a container: %w", id, vocab.Virt, errdefs.ErrFailedPrecondition)
	}
	sock := filepath.Join(vdir, virt.DebugConsoleSocket)
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("debug console is off for pod %s: set [virt] debug_console = true in husk's configuration and start the pod again (a pod started with it on whose shim could not serve it: the shim's log says why): %w", id, errdefs.ErrFailedPrecondition)
	}
	return sock, nil
}

// debugConsole speaks api.DebugConsolePort's protocol through the shim's
// socket sock: in's bytes to the guest's terminal, its output to out.
func debugConsole(ctx context.Context, sock string, in *os.File, out, msgs io.Writer) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("the pod's shim does not take the console (is the pod running?): %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	fd := int(in.Fd())
	tty := term.IsTerminal(fd)
	var rows, cols uint16
	if tty {
		if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 && w <= 0xffff && h <= 0xffff {
			rows, cols = uint16(h), uint16(w)
		}
	}
	_ = conn.SetDeadline(time.Now().Add(debugConsoleAnswer))
	werr := api.WriteConsoleHeader(conn, rows, cols)
	// A refusal may have been written before the header could be: read
	// it even when the write failed, and say why rather than EPIPE.
	var a [1]byte
	if _, err := io.ReadFull(conn, a[:]); err != nil {
		if werr != nil {
			return fmt.Errorf("asking for a console: %w", werr)
		}
		return fmt.Errorf("no answer from the pod's agent within %v: %w", debugConsoleAnswer, err)
	}
	if err := api.ConsoleAnswerError(a[0]); err != nil {
		return fmt.Errorf("debug console: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	if tty {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("the terminal's raw mode: %w", err)
		}
		defer func() { _ = term.Restore(fd, old) }()
		fmt.Fprint(msgs, "huskctl: a shell in the guest; \"exit\" or ^D ends it\r\n")
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 && w <= 0xffff && h <= 0xffff {
					if api.WriteConsoleResize(conn, uint16(h), uint16(w)) != nil {
						return
					}
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, api.MaxConsoleFrame)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if api.WriteConsoleData(conn, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				if !tty {
					// The input's end is the shell's: ^D on an empty
					// line of the guest's terminal.
					_ = api.WriteConsoleData(conn, []byte("\n\x04"))
				}
				return
			}
		}
	}()
	_, err = io.Copy(out, conn)
	if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("debug console: %w", err)
	}
	return ctx.Err()
}
