package virt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// TestSandboxForwardsThePodsLoopback: a VM pod with a network namespace
// steers that namespace's loopback to its agent's forward port: a client
// in the namespace reaches a server the "guest" runs (the fake VM's agent
// runs in the test's own namespace, so the guest's 127.0.0.1 is the
// test's); after the sandbox's Close the namespace's port is refused
// again, nothing steers it any more.
func TestSandboxForwardsThePodsLoopback(t *testing.T) {
	path, h := testPodNetns(t)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	if err := ProbePortForward(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("this host cannot forward VM pods' ports: %v", err)
	}
	// The guest's server.
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "from the guest\n")
			c.Close()
		}
	}()
	addr := srv.Addr().String()

	dir := t.TempDir()
	cfg := config.Default()
	cfg.Virt.GuestImage = fakeImage(t, filepath.Join(dir, "guest"))
	cfg.Virt.BootTimeout = "10s"
	hd := New(&fakeHypervisor{t: t})
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: path}}}}
	sb, err := hd.NewSandbox(context.Background(), &handler.SandboxRequest{ID: "pod", StateDir: t.TempDir(), Spec: spec, Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())

	c, err := dialIn(path, "tcp4", addr)
	if err != nil {
		t.Fatalf("dialling %s in the pod's namespace: %v", addr, err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<10))
	c.Close()
	if err != nil || string(b) != "from the guest\n" {
		t.Fatalf("read %q, %v; want the guest's answer", b, err)
	}

	if err := sb.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := dialIn(path, "tcp4", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("after Close, dialling %s in the pod's namespace: %v, want connection refused", addr, err)
	}
}
