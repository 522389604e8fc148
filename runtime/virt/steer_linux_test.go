package virt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

// testNetns makes a network namespace of the test's own with lo up (as
// the CNI loopback plugin leaves a pod's), bind-mounted under
// t.TempDir(); it goes with the test.
func testNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace")
	}
	path := filepath.Join(t.TempDir(), "netns")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, ""); err != nil {
			errc <- err
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(path, unix.MNT_DETACH) })
	return path
}

// dialIn dials addr from inside the namespace at path.
func dialIn(path, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the namespace
		ns, err := netns.GetFromPath(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			ch <- result{err: err}
			return
		}
		c, err := net.Dial(network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// steerOrSkip steers the namespace's loopback, or skips where the kernel
// cannot (no BPF sk_lookup): then pods run without port-forward.
func steerOrSkip(t *testing.T, path string) *loopbackSteer {
	t.Helper()
	s, err := steerLoopback(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("this kernel cannot steer a namespace's loopback: %v", err)
	}
	return s
}

func TestSteerLoopbackBringsEveryPortToTheForwarder(t *testing.T) {
	path := testNetns(t)
	s := steerOrSkip(t, path)
	a := &fakeForwardAgent{answer: api.ForwardConnected}
	f := newPortForwarder(context.Background(), a.dial, s.listeners(), 4)
	for _, d := range []struct{ network, addr, want string }{
		{"tcp4", "127.0.0.1:8080", "guest port 8080\n"},
		{"tcp4", "127.0.0.1:1", "guest port 1\n"},
		{"tcp6", "[::1]:9090", "guest port 9090\n"},
	} {
		c, err := dialIn(path, d.network, d.addr)
		if err != nil {
			t.Fatalf("%s: %v", d.addr, err)
		}
		line, err := readLine(t, c)
		c.Close()
		if err != nil || line != d.want {
			t.Fatalf("%s: read %q, %v; want %q", d.addr, line, err, d.want)
		}
	}
	f.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing of it is left in the namespace: a port nobody listens on
	// is refused again.
	if c, err := dialIn(path, "tcp4", "127.0.0.1:8080"); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("after Close, dialling 127.0.0.1:8080: %v, want connection refused", err)
	}
}

func TestSteerLoopbackLeavesOtherNamespacesAlone(t *testing.T) {
	path := testNetns(t)
	s := steerOrSkip(t, path)
	defer s.Close()
	other := testNetns(t)
	if c, err := dialIn(other, "tcp4", "127.0.0.1:8080"); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("another namespace's 127.0.0.1:8080: %v, want connection refused", err)
	}
}

func TestSteerLoopbackNeedsANamespace(t *testing.T) {
	if _, err := steerLoopback(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a namespace that does not exist was steered")
	}
}

func TestProbePortForward(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace")
	}
	if err := ProbePortForward(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("this host cannot forward VM pods' ports: %v", err)
	}
}
