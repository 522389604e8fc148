package guestimage

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/agent/serial"
)

// TestAgentAnswersOverVirtioSerialInQEMU boots the image in QEMU (TCG:
// no KVM or vhost-vsock needed) with the agent's virtio-serial port on a
// chardev socket, as the qemu backend does on a host without vsock, and
// reaches the agent's Check through the host's serial Session, connecting
// once the agent waits for a host on its port; then the host goes away and
// comes back once the agent has reopened the port, and a fresh session
// answers again. Both times the guest learns of the host's connection
// from the driver's wake-up (its fallback would take a second).
//
// The machine is QEMU's default (i440fx) with virtio-serial-pci: microvm
// with virtio-serial-device does not boot Debian's kernel under TCG here
// (it stops calibrating the TSC: no PIT, HPET or PM timer to measure it
// against).
func TestAgentAnswersOverVirtioSerialInQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU TCG (tens of seconds): skipped with -short")
	}
	kdir := cachedKernel(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("no qemu-system-x86_64: apt-get install qemu-system-x86")
	}
	img, m := buildGuest(t, kdir)
	if !slices.Contains(m.Builtin, "virtio_console") && !slices.Contains(m.Modules, "virtio_console.ko") {
		t.Fatalf("the image has no virtio_console: built in %v, loaded %v", m.Builtin, m.Modules)
	}

	// QEMU's Unix socket paths are bounded (108 bytes): a short directory.
	dir, err := os.MkdirTemp("", "husk-serial-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-nodefaults", "-no-user-config",
		"-display", "none", "-serial", "stdio", "-no-reboot",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=agent,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name="+serial.PortName,
		"-kernel", filepath.Join(img, KernelFile), "-initrd", filepath.Join(img, InitrdFile),
		"-append", "console=ttyS0 panic=-1 reboot=k quiet")
	console := &lineWaiter{want: "serial=/dev/vport", found: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = console, console
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nconsole:\n%s", append(args, console.String())...)
	}

	// The host connects once the agent has found its port (it then waits
	// for a host: the driver wakes it when one connects).
	select {
	case <-console.found:
	case err := <-exited:
		exited <- err
		fail("QEMU ended (%v) before the agent served its serial port", err)
	case <-ctx.Done():
		fail("the agent did not serve its serial port in time")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fail("connecting to the port: %v", err)
	}
	check := func(conn net.Conn, what string) (*serial.Session, *client.Client, time.Duration) {
		t.Helper()
		s, err := serial.New(conn)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Dial(ctx, api.AgentPort)
		if err != nil {
			fail("%s: dialling the agent: %v", what, err)
		}
		cl := client.New(c, client.Options{})
		res, err := cl.Check(ctx)
		if err != nil {
			fail("%s: Check: %v", what, err)
		}
		if res.ProtocolVersion != api.ProtocolVersion || res.KernelRelease != m.Release {
			fail("%s: Check = %+v, want protocol %d on kernel %s", what, res, api.ProtocolVersion, m.Release)
		}
		return s, cl, time.Since(start)
	}
	s1, cl1, first := check(conn, "first session")

	// Round trips of Check, and a stdio stream attached.
	const n = 20
	rtts := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := cl1.Check(ctx); err != nil {
			fail("Check: %v", err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	st, err := s1.Dial(ctx, api.StreamPort)
	if err != nil {
		fail("attaching a stream: %v", err)
	}
	if err := api.WriteStreamHeader(st, api.NewStreamID()); err != nil {
		fail("writing a stream header: %v", err)
	}

	// The host goes away (a shim that exits) and, once the guest has seen
	// it go and reopened its port, comes back.
	cl1.Close()
	s1.Close()
	for !strings.Contains(console.String(), "reopening the port") {
		select {
		case <-ctx.Done():
			fail("the agent did not log the first session's end")
		case <-time.After(50 * time.Millisecond):
		}
	}
	t0 := time.Now()
	conn, err = net.Dial("unix", sock)
	if err != nil {
		fail("reconnecting: %v", err)
	}
	s2, cl2, _ := check(conn, "second session")
	again := time.Since(t0)
	cl2.Close()
	s2.Close()
	t.Logf("%s: Check over virtio-serial %v after QEMU started (TCG); Check round trip median %v, max %v over %d; a reconnected host answered in %v",
		m.Release, first.Round(time.Millisecond), rtts[n/2].Round(time.Microsecond), rtts[n-1].Round(time.Microsecond), n, again.Round(time.Millisecond))
}
