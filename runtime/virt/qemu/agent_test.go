package qemu

import (
	"context"
	"encoding/json"
	"fmt"

	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/test/devenv"
)

// TestAgentOverTheHostsChannel boots the guest image in QEMU on this host
// with the agent channel Start chooses here (vhost-vsock where the host
// has it, else virtio-serial: this host has no vhost-vsock), and drives
// the agent as the virt handler does: Check answers, a root filesystem
// attached after boot is found by its serial and a container runs on it
// in the guest, printing the guest's command line and the disks' serials
// on a stdio stream of the same channel; then the disk is detached and
// the VM stopped.
func TestAgentOverTheHostsChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Debian's kernel in QEMU (TCG here: about 10 s); skipped with -short")
	}
	needQEMU(t)
	kernel, initrd := guestImage(t)
	rootfs := busyboxErofs(t)
	h := New()
	ch, err := h.newChannel()
	if err != nil {
		t.Fatal(err)
	}
	kind := ch.kind()
	ch.close()
	con := newConsole()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const marker = "husk.qemu-agent-test"
	start := time.Now()
	// QEMU runs as nobody where there is one (and the shim is root):
	// everything it needs but the guest image is passed to it open.
	qcfg := virt.QEMUConfig{}
	_, err = user.Lookup("nobody")
	switch {
	case err != nil || os.Getuid() != 0:
		t.Logf("QEMU runs as this test's user: no user nobody to run it as, or not root (%v)", err)
	case !othersCanRead(kernel) || !othersCanRead(initrd):
		t.Logf("QEMU runs as this test's user: the guest image in %s is not readable by others", filepath.Dir(kernel))
	default:
		qcfg.User = "nobody"
	}
	v, err := h.Start(ctx, &virt.VMConfig{
		ID: "qemu-agent", Dir: t.TempDir(), Kernel: kernel, Initrd: initrd,
		KernelParams: []string{"console=ttyS0", "reboot=k", "panic=-1", "quiet", marker},
		VCPUs:        1, MemoryMiB: 256, DiskSlots: 2, Console: con, QEMU: qcfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	if qcfg.User != "" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", v.Pid()))
		nobody, _ := user.Lookup("nobody")
		if err != nil || !regexp.MustCompile(`(?m)^Uid:\s+`+nobody.Uid+`\s+`+nobody.Uid+`\s`).Match(b) {
			t.Errorf("QEMU does not run as nobody (%v):\n%s", err, b)
		}
	}
	fail := func(f string, a ...any) {
		t.Helper()
		t.Fatalf(f+"\nconsole:\n%s", append(a, con.String())...)
	}
	var cl *client.Client
	for cl == nil {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := v.Dial(dctx, api.AgentPort)
		dcancel()
		if err == nil {
			c := client.New(conn, client.Options{CallTimeout: 30 * time.Second})
			if _, err = c.Check(ctx); err == nil {
				cl = c
				break
			}
			c.Close()
		}
		select {
		case <-v.Done():
			fail("the VM ended (%v) before its agent answered (last: %v)", v.Err(), err)
		case <-ctx.Done():
			fail("the agent did not answer over %s: %v", kind, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer cl.Close()
	t.Logf("the agent answered Check over %s %v after Start began (accel %s)", kind, time.Since(start).Round(time.Millisecond), v.(*vm).accel)

	t0 := time.Now()
	if err := v.AttachDisk(ctx, rootfs, true, "rootfs-c1"); err != nil {
		fail("attach: %v", err)
	}
	if err := cl.CreateSandbox(ctx, "pod", "husk-qemu"); err != nil {
		fail("create sandbox: %v", err)
	}
	out, err := v.Dial(ctx, api.StreamPort)
	if err != nil {
		fail("stream: %v", err)
	}
	id := api.NewStreamID()
	if err := api.WriteStreamHeader(out, id); err != nil {
		fail("stream header: %v", err)
	}
	s, _ := json.Marshal(specs.Spec{
		Version: specs.Version, Hostname: "c1", Root: &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh", "-c", "echo $(cat /proc/cmdline); echo serials $(cat /sys/block/*/serial)"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{CgroupsPath: "/husk/c1", Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace}}},
	})
	if _, err := cl.CreateContainer(ctx, client.CreateContainerRequest{
		ContainerID: "c1", Spec: s, Rootfs: client.Rootfs{DiskSerial: "rootfs-c1", FSType: "erofs"},
		Stdio: client.Stdio{Stdout: id},
	}); err != nil {
		fail("create a container on the disk attached after boot: %v", err)
	}
	t.Logf("attach to container created: %v", time.Since(t0).Round(time.Millisecond))
	if _, err := cl.StartContainer(ctx, "c1"); err != nil {
		fail("start: %v", err)
	}
	_ = out.SetReadDeadline(time.Now().Add(2 * time.Minute))
	b, _ := io.ReadAll(out)
	out.Close()
	var r client.WaitResult
	for !r.Exited && ctx.Err() == nil {
		if r, err = cl.WaitProcess(ctx, "c1", "", 5*time.Second); err != nil {
			fail("wait: %v", err)
		}
	}
	text := string(b)
	if r.ExitStatus != 0 || !strings.Contains(text, marker) || !strings.Contains(text, "serials rootfs-c1") {
		fail("c1 exited %d printing %q; want status 0, the guest's command line (%s) and the disk's serial", r.ExitStatus, text, marker)
	}
	if st, err := v.Stats(ctx); err == nil {
		t.Logf("QEMU's RSS with the container run: %d MiB (guest memory 256 MiB, accel %s)", st.RSSBytes>>20, v.(*vm).accel)
	}
	if err := cl.DeleteContainer(ctx, "c1"); err != nil {
		fail("delete: %v", err)
	}
	if err := v.DetachDisk(ctx, "rootfs-c1"); err != nil {
		fail("detach: %v", err)
	}
	if err := v.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Err(); err != nil {
		t.Errorf("Err after Stop: %v", err)
	}
}

// othersCanRead says whether a user with no rights of owner or group can
// read the file at path: every directory above it searchable, the file
// readable, by others.
func othersCanRead(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return false
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil || di.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == filepath.Dir(dir) {
			return true
		}
	}
}

// busyboxErofs is a busybox root filesystem as an EROFS image.
func busyboxErofs(t *testing.T) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no mkfs.erofs (make tools installs erofs-utils)")
		}
		t.Skip("needs mkfs.erofs (Debian's erofs-utils; make tools installs it)")
	}
	dir := t.TempDir()
	if err := devenv.BusyboxRootfs(filepath.Join(dir, "root")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("no busybox root filesystem: %v", err)
	}
	img := filepath.Join(dir, "rootfs.erofs")
	if out, err := exec.Command(mkfs, img, filepath.Join(dir, "root")).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	return img
}
