package guestimage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/agent/serial"
	"github.com/huskrt/husk/test/devenv"
)

// TestAgentAnswersOverVirtioSerialInQEMU boots the image in QEMU (TCG:
// no KVM or vhost-vsock needed) with the agent's virtio-serial port on a
// chardev socket, as the qemu backend does on a host without vsock, and
// reaches the agent's Check through the host's serial Session, connecting
// once the agent waits for a host on its port; then the host goes away and
// comes back once the agent has reopened the port, and a fresh session
// answers again and runs a container from a disk, its stdin and stdout
// (8 MiB, timed) on streams of the session. Both times the guest learns of the host's connection
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

	rootfs := busyboxErofs(t)

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
		"-drive", "file="+rootfs+",if=none,id=rootfs,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=rootfs,serial=rootfs",
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
	const checks = 20
	rtts := make([]time.Duration, 0, checks)
	for range checks {
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
	defer s2.Close()
	defer cl2.Close()

	// A container over the second session: stdin in, stdout out.
	if err := cl2.CreateSandbox(ctx, "pod", "serial"); err != nil {
		fail("CreateSandbox: %v", err)
	}
	attach := func() (net.Conn, uint64) {
		c, err := s2.Dial(ctx, api.StreamPort)
		if err != nil {
			fail("attaching a stream: %v", err)
		}
		id := api.NewStreamID()
		if err := api.WriteStreamHeader(c, id); err != nil {
			fail("writing a stream header: %v", err)
		}
		return c, id
	}
	in, inID := attach()
	out, outID := attach()
	const size = 8 << 20
	spec, _ := json.Marshal(specs.Spec{
		Version: specs.Version, Hostname: "c1", Root: &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh", "-c", fmt.Sprintf("read l; echo got $l; head -c %d /dev/zero", size)}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, {Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}}},
		Linux:   &specs.Linux{CgroupsPath: "/husk/c1", Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace}}},
	})
	if _, err := cl2.CreateContainer(ctx, client.CreateContainerRequest{
		ContainerID: "c1", Spec: spec, Rootfs: client.Rootfs{DiskSerial: "rootfs", FSType: "erofs"},
		Stdio: client.Stdio{Stdin: inID, Stdout: outID},
	}); err != nil {
		fail("CreateContainer: %v", err)
	}
	if _, err := cl2.StartContainer(ctx, "c1"); err != nil {
		fail("StartContainer: %v", err)
	}
	if _, err := in.Write([]byte("serial\n")); err != nil {
		fail("stdin: %v", err)
	}
	in.Close()
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil || line != "got serial\n" {
		fail("first line of stdout %q, %v; want %q", line, err, "got serial\n")
	}
	t1 := time.Now()
	n, err := io.Copy(io.Discard, br)
	copied := time.Since(t1)
	if err != nil || n != size {
		fail("stdout: %d bytes, %v; want %d", n, err, size)
	}
	var r client.WaitResult
	for !r.Exited {
		if r, err = cl2.WaitProcess(ctx, "c1", "", 5*time.Second); err != nil {
			fail("WaitProcess: %v", err)
		}
	}
	if r.ExitStatus != 0 {
		fail("c1 exited %d", r.ExitStatus)
	}
	if err := cl2.DeleteContainer(ctx, "c1"); err != nil {
		fail("DeleteContainer: %v", err)
	}
	t.Logf("%s: Check over virtio-serial %v after QEMU started (TCG); Check round trip median %v, max %v over %d; a reconnected host answered in %v; a container's %d MiB of stdout in %v (%.1f MiB/s)",
		m.Release, first.Round(time.Millisecond), rtts[checks/2].Round(time.Microsecond), rtts[checks-1].Round(time.Microsecond), checks,
		again.Round(time.Millisecond), size>>20, copied.Round(time.Millisecond), float64(size)/(1<<20)/copied.Seconds())
}

// busyboxErofs is an EROFS image of a busybox root filesystem, or skips.
func busyboxErofs(t *testing.T) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		t.Skip("no mkfs.erofs: apt-get install erofs-utils")
	}
	dir := t.TempDir()
	if err := devenv.BusyboxRootfs(filepath.Join(dir, "rootfs")); err != nil {
		t.Skipf("no busybox root filesystem: %v", err)
	}
	img := filepath.Join(dir, "rootfs.erofs")
	if out, err := exec.Command(mkfs, img, filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	return img
}
