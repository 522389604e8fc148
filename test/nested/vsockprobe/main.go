// Command vsockprobe exercises husk's hybrid vsock from both ends in the
// nested-KVM harness. Built static (CGO_ENABLED=0), it runs in the inner
// guest (AF_VSOCK) and in the outer guest (the Unix sockets the VMM
// connects to or accepts):
//
//	vsockprobe guest-dial PORT MESSAGE   connect to the host (CID 2), send a line, print the answer
//	vsockprobe guest-serve PORT          accept one connection, answer its line with "pong:LINE"
//	vsockprobe host-echo PATH            listen on PATH (the VMM's UDS_PORT), answer one line with "echo:LINE"
//	vsockprobe host-dial UDS PORT MESSAGE  CONNECT through the VMM's socket (retrying until the
//	                                     guest listens), send a line, print the answer
//
// Each prints one "HUSK-VSOCK: <mode> ok <answer>" line on success and
// exits 1 with a reason otherwise.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Printf("HUSK-VSOCK: %s failed: %v\n", strings.Join(os.Args[1:2], ""), err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: vsockprobe guest-dial|guest-serve|host-echo|host-dial ARGS")
	}
	switch args[0] {
	case "guest-dial":
		if len(args) != 3 {
			return fmt.Errorf("want PORT MESSAGE")
		}
		port, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			return err
		}
		f, err := vsockDial(uint32(port))
		if err != nil {
			return err
		}
		return exchange("guest-dial", f, args[2])
	case "guest-serve":
		port, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			return err
		}
		return vsockServe(uint32(port))
	case "host-echo":
		l, err := net.Listen("unix", args[1])
		if err != nil {
			return err
		}
		c, err := l.Accept()
		if err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "echo:%s", line)
		c.Close()
		fmt.Printf("HUSK-VSOCK: host-echo ok %s", line)
		return nil
	case "host-dial":
		if len(args) != 4 {
			return fmt.Errorf("want UDS PORT MESSAGE")
		}
		return hostDial(args[1], args[2], args[3])
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// exchange sends msg as a line on rw and prints the answer line.
func exchange(mode string, f *os.File, msg string) error {
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s\n", msg); err != nil {
		return err
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Printf("HUSK-VSOCK: %s ok %s", mode, line)
	return nil
}

func vsockDial(port uint32) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_HOST, Port: port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to CID 2 port %d: %w", port, err)
	}
	return os.NewFile(uintptr(fd), "vsock"), nil
}

func vsockServe(port uint32) error {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		return fmt.Errorf("bind port %d: %w", port, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		return err
	}
	// Say we listen, so the host side knows it may connect now.
	fmt.Printf("HUSK-VSOCK: guest-serve listening on %d\n", port)
	nfd, _, err := unix.Accept(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(nfd), "vsock")
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "pong:%s", line); err != nil {
		return err
	}
	fmt.Printf("HUSK-VSOCK: guest-serve ok %s", line)
	return nil
}

// hostDial connects through the VMM's socket, retrying while the socket
// does not exist yet or the guest does not listen yet (the VMM then
// closes the connection without "OK").
func hostDial(uds, port, msg string) error {
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.Dial("unix", uds)
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		fmt.Fprintf(c, "CONNECT %s\n", port)
		r := bufio.NewReader(c)
		ok, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(ok, "OK ") {
			c.Close()
			last = fmt.Errorf("handshake answered %q, %v", ok, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		fmt.Fprintf(c, "%s\n", msg)
		line, err := r.ReadString('\n')
		c.Close()
		if err != nil {
			return err
		}
		fmt.Printf("HUSK-VSOCK: host-dial ok %s", line)
		return nil
	}
	return fmt.Errorf("gave up: %v", last)
}
