package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
)

// noAgentChannel adds no device: for a host with no vhost-vsock, where
// the tests prove QEMU's side without reaching the agent.
type noAgentChannel struct{}

func (noAgentChannel) kind() string                       { return "none (test)" }
func (noAgentChannel) devices(int) ([]string, []*os.File) { return nil, nil }
func (noAgentChannel) close() error                       { return nil }
func (noAgentChannel) started()                           {}
func (noAgentChannel) dial(context.Context, uint32) (net.Conn, error) {
	return nil, errors.New("no agent channel (test)")
}

// guestImage returns the repository's guest image (make guest), skipping
// the test without one, except under CI where make test builds it.
func guestImage(t *testing.T) (kernel, initrd string) {
	t.Helper()
	wd, _ := os.Getwd()
	dir := wd
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
		dir = filepath.Dir(dir)
	}
	img := filepath.Join(dir, ".tools", "guest")
	if o := os.Getenv("HUSK_TEST_GUEST"); o != "" {
		img = o // an image built elsewhere (huskctl guest build --out)
	}
	m, err := guestimage.Load(img)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no guest image (make test builds it): %v", err)
		}
		t.Skipf("needs the guest image (make guest): %v", err)
	}
	// An image built before the agent loaded virtio_pci sees no device
	// of a q35 machine.
	for _, mod := range []string{"virtio_pci", "virtio_console"} {
		if !slices.Contains(m.Modules, mod+".ko") && !slices.Contains(m.Builtin, mod) {
			t.Fatalf("the guest image in %s predates the qemu backend (no %s): rebuild it with make guest", img, mod)
		}
	}
	return filepath.Join(img, guestimage.KernelFile), filepath.Join(img, guestimage.InitrdFile)
}

func needQEMU(t *testing.T) {
	t.Helper()
	if err := unix.Access(DefaultBinary, unix.X_OK); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no %s (hack/install-tools.sh installs qemu-system-x86): %v", DefaultBinary, err)
		}
		t.Skipf("needs %s (apt-get install qemu-system-x86): %v", DefaultBinary, err)
	}
}

// console keeps the guest's console and lets a test wait for a pattern.
type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	kick chan struct{}
}

func newConsole() *console { return &console{kick: make(chan struct{}, 1)} }

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until re matches n times on the console, or the VM ends,
// or ctx does.
func (c *console) waitFor(ctx context.Context, v virt.VM, re *regexp.Regexp, n int) error {
	for {
		if len(re.FindAllString(c.String(), -1)) >= n {
			return nil
		}
		select {
		case <-c.kick:
		case <-v.Done():
			return fmt.Errorf("the VM ended (%v) before %d of %q", v.Err(), n, re)
		case <-ctx.Done():
			return fmt.Errorf("no %d of %q: %w", n, re, ctx.Err())
		}
	}
}

// TestBootAndHotPlugTCG boots the guest image in QEMU on this host
// (TCG where /dev/kvm cannot run a guest) as the virt handler would, with
// no agent channel (TestAgentOverTheHostsChannel reaches the agent; here
// the guest kernel's own lines are the proof): the agent comes up, a disk attached after boot appears in
// the guest with its size (the kernel's virtio_blk line), detaching it
// completes only once the guest has let the PCIe device go, its slot takes
// another disk, the VM's process is in the given cgroup, and Stop and a
// later shim's Cleanup leave no QEMU.
func TestBootAndHotPlugTCG(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Debian's kernel in QEMU (TCG here: about 10 s); skipped with -short")
	}
	needQEMU(t)
	kernel, initrd := guestImage(t)
	h := New()
	h.newChannel = func() (channel, error) { return noAgentChannel{}, nil }
	dir := t.TempDir()
	con := newConsole()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cg := fmt.Sprintf("/husk-qemu-test-%d", os.Getpid())
	if err := cgroups.Create(cg); err != nil {
		t.Logf("the cgroup is not checked: this host cannot create one: %v", err)
		cg = ""
	} else {
		defer cgroups.Remove(cg)
	}
	start := time.Now()
	v, err := h.Start(ctx, &virt.VMConfig{
		ID: "qemu-real", Dir: dir, Kernel: kernel, Initrd: initrd,
		// Not quiet: virtio_blk's capacity line is a notice.
		KernelParams: []string{"console=ttyS0", "reboot=k", "panic=-1"},
		VCPUs:        1, MemoryMiB: 256, DiskSlots: 2, Console: con, Cgroup: cg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	qv := v.(*vm)
	t.Logf("QEMU %d started with accel %s in %v", v.Pid(), qv.accel, time.Since(start).Round(time.Millisecond))
	if r, err := readRecord(dir); err != nil || r != v.Pid() {
		t.Fatalf("record: pid %d, %v; want %d", r, err, v.Pid())
	}
	for _, ns := range []string{"pid", "ipc", "uts"} {
		ours, _ := os.Readlink("/proc/self/ns/" + ns)
		its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", v.Pid(), ns))
		if err != nil || its == ours {
			t.Errorf("QEMU's %s namespace is %q (%v), the shim's is %q: want its own", ns, its, err, ours)
		}
	}
	if cg != "" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", v.Pid()))
		if err != nil || !regexp.MustCompile(`(?m):`+regexp.QuoteMeta(cg)+`$`).Match(b) {
			t.Errorf("QEMU's cgroups (%v):\n%s\nwant %s", err, b, cg)
		}
	}
	if err := con.waitFor(ctx, v, regexp.MustCompile(`guest=true`), 1); err != nil {
		t.Fatalf("%v; console:\n%s", err, con.String())
	}
	booted := time.Since(start)
	t.Logf("agent serving %v after Start began", booted.Round(time.Millisecond))

	// 4103 sectors: a size no other disk has.
	const sectors = 4103
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, sectors*512), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := regexp.MustCompile(fmt.Sprintf(`\[vd[a-z]\] %d 512-byte logical blocks`, sectors))
	if err := v.AttachDisk(ctx, disk, true, "bad\x00serial"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a serial with NUL: %v, want invalid argument", err)
	}
	t0 := time.Now()
	if err := v.AttachDisk(ctx, disk, true, "husk-hotplug"); err != nil {
		t.Fatal(err)
	}
	attachCall := time.Since(t0)
	if err := v.AttachDisk(ctx, disk, true, "husk-hotplug"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("a second disk with the serial: %v, want already exists", err)
	}
	if err := con.waitFor(ctx, v, seen, 1); err != nil {
		t.Fatalf("%v; console:\n%s", err, con.String())
	}
	t.Logf("hot-plug: AttachDisk returned in %v, the guest saw the disk %v after the call began",
		attachCall.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if err := v.AttachDisk(ctx, disk, true, "husk-second"); err != nil {
		t.Fatal(err)
	}
	if err := v.AttachDisk(ctx, disk, true, "husk-third"); !errors.Is(err, virt.ErrNoFreeSlot) {
		t.Errorf("a third disk in two slots: %v, want no free slot", err)
	}
	if err := v.DetachDisk(ctx, "husk-none"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("detaching an unknown serial: %v, want not found", err)
	}
	t0 = time.Now()
	if err := v.DetachDisk(ctx, "husk-hotplug"); err != nil {
		t.Fatal(err)
	}
	t.Logf("hot-unplug: DetachDisk (until the guest released the device) took %v", time.Since(t0).Round(time.Millisecond))
	if err := v.AttachDisk(ctx, disk, true, "husk-again"); err != nil {
		t.Fatalf("the freed slot: %v", err)
	}
	if err := con.waitFor(ctx, v, seen, 3); err != nil {
		t.Fatalf("%v; console:\n%s", err, con.String())
	}
	st, err := v.Stats(ctx)
	if err != nil || st.RSSBytes == 0 || st.MemoryMiB != 256 || st.Uptime <= 0 {
		t.Errorf("stats %+v, %v", st, err)
	}
	serials := map[string]virt.DiskStats{}
	for _, d := range st.Disks {
		serials[d.Serial] = d
	}
	// The guest's kernel read husk-second's partition table when it
	// probed it, before it probed husk-again.
	if _, ok := serials["husk-again"]; len(st.Disks) != 2 || !ok || serials["husk-second"].Reads == 0 {
		t.Errorf("disk stats %+v, want husk-second (read) and husk-again", st.Disks)
	}
	// A device that left without DetachDisk (as when the guest ejects
	// it through ACPI): DetachDisk then releases the slot's node and
	// descriptor without waiting for an event that has come already.
	qv.diskMu.Lock()
	slotOf := -1
	for i, sl := range qv.slots {
		if sl.serial == "husk-second" {
			slotOf = i
		}
	}
	qv.diskMu.Unlock()
	if _, err := qv.qmp.execute(ctx, "device_del", map[string]any{"id": deviceID(slotOf)}, nil); err != nil {
		t.Fatal(err)
	}
	// The event is recorded though no detach waits for it.
	for recorded := false; !recorded; {
		qv.mu.Lock()
		c, ok := qv.deleted[deviceID(slotOf)]
		qv.mu.Unlock()
		if ok {
			select {
			case <-c:
				recorded = true
			default:
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no DEVICE_DELETED recorded for a device that left behind the backend's back")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := v.DetachDisk(ctx, "husk-second"); err != nil {
		t.Fatalf("detaching a disk the guest let go already: %v", err)
	}
	if err := v.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Err(); err != nil {
		t.Errorf("Err after Stop: %v", err)
	}
	if err := unix.Kill(v.Pid(), 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("QEMU %d after Stop: kill 0 says %v", v.Pid(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, recordName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record after Stop: %v", err)
	}
	if err := v.AttachDisk(ctx, disk, true, "husk-late"); !errors.Is(err, ErrVMEnded) {
		t.Errorf("attach after Stop: %v, want VM ended", err)
	}
}

// TestCleanupEndsALeftQEMU: a VM whose shim is gone (Stop never called)
// is ended by Cleanup from its directory alone.
func TestCleanupEndsALeftQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU; skipped with -short")
	}
	needQEMU(t)
	kernel, initrd := guestImage(t)
	h := New()
	h.newChannel = func() (channel, error) { return noAgentChannel{}, nil }
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := h.Start(ctx, &virt.VMConfig{ID: "qemu-left", Dir: dir, Kernel: kernel, Initrd: initrd,
		KernelParams: []string{"console=ttyS0"}, VCPUs: 1, MemoryMiB: 128, DiskSlots: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	if _, err := h.Start(ctx, &virt.VMConfig{ID: "qemu-left", Dir: dir, Kernel: kernel, Initrd: initrd,
		VCPUs: 1, MemoryMiB: 128, DiskSlots: 1}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("a second VM in the directory: %v, want already exists", err)
	}
	if err := New().Cleanup(ctx, dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Done():
	case <-ctx.Done():
		t.Fatal("QEMU still runs after Cleanup")
	}
	if err := v.Err(); !errors.Is(err, ErrQEMUFailed) {
		t.Errorf("Err after Cleanup: %v, want QEMU killed", err)
	}
	if err := New().Cleanup(ctx, dir); err != nil {
		t.Errorf("a second Cleanup: %v", err)
	}
}

func readRecord(dir string) (int, error) {
	r, err := vmproc.Read(filepath.Join(dir, recordName))
	if err != nil {
		return 0, err
	}
	return r.Pid, nil
}

// TestGuestPanicEndsTheVM: a guest kernel that panics (here: no root to
// mount, its init missing) reboots with panic=-1, which ends QEMU
// (-no-reboot): Done closes by itself and Err says the guest rebooted.
func TestGuestPanicEndsTheVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Debian's kernel in QEMU until it panics; skipped with -short")
	}
	needQEMU(t)
	kernel, initrd := guestImage(t)
	h := New()
	h.newChannel = func() (channel, error) { return noAgentChannel{}, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	con := newConsole()
	v, err := h.Start(ctx, &virt.VMConfig{ID: "qemu-panic", Dir: t.TempDir(), Kernel: kernel, Initrd: initrd,
		KernelParams: []string{"console=ttyS0", "reboot=k", "panic=-1", "rdinit=/husk-no-such-init"},
		VCPUs:        1, MemoryMiB: 128, DiskSlots: 1, Console: con})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop(context.Background())
	select {
	case <-v.Done():
	case <-ctx.Done():
		t.Fatalf("the VM did not end; console:\n%s", con.String())
	}
	if err := v.Err(); !errors.Is(err, ErrReboot) {
		t.Errorf("Err = %v, want ErrReboot; console:\n%s", err, con.String())
	}
}
