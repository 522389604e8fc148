package nested

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

// TestNestedQEMUBackend runs runtime/virt/qemu in the outer guest, which
// has a real /dev/kvm and /dev/vhost-vsock (neither of which this host
// has): QEMU q35 with KVM boots the guest image in the pod cgroup, the
// agent answers Check over vhost-vsock, a root filesystem attached after
// boot is found by the agent by its serial and a container runs on it in
// the inner guest, the disk is detached once the guest lets it go, Stop
// leaves no QEMU, and Cleanup ends a second VM's QEMU from its directory.
func TestNestedQEMUBackend(t *testing.T) {
	repo, as := nestedSetup(t, "about a minute")
	mkfs := lookMkfsErofs(t)
	dir := t.TempDir()
	guest, err := BuildGuestImage(context.Background(), repo, dir)
	if err != nil {
		t.Fatal(err)
	}
	rootDir := filepath.Join(dir, "rootfs")
	if err := devenv.BusyboxRootfs(rootDir); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.erofs")
	if out, err := exec.Command(mkfs, rootfs, rootDir).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "qemuvm")
	if err := BuildQEMUVM(context.Background(), repo, bin); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var tee io.Writer
	if testing.Verbose() {
		tee = prefixWriter{os.Stderr}
	}
	start := time.Now()
	verdict, lines, console, err := RunQEMUVM(ctx, as, bin, filepath.Join(guest, guestimage.KernelFile), filepath.Join(guest, guestimage.InitrdFile), rootfs, dir, tee)
	skipIfMissing(t, err)
	for _, l := range lines {
		t.Log(l)
	}
	if verdict != verdictPass {
		t.Fatalf("verdict %q after %v\nconsole ends:\n%s", verdict, time.Since(start).Round(time.Millisecond), tail(console, 120))
	}
	t.Logf("nested qemu backend run: PASS in %v wall", time.Since(start).Round(time.Millisecond))
}
