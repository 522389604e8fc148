package nested

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	if testing.Short() {
		t.Skip("the nested-KVM harness runs QEMU TCG for about a minute; skipped with -short")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the nested-KVM harness needs linux/amd64")
	}
	ci := os.Getenv("CI") != ""
	missing := func(err error) {
		t.Helper()
		if errors.Is(err, ErrMissing) && ci {
			t.Fatalf("under CI the nested tier must run: %v", err)
		}
		skipIfMissing(t, err)
	}
	wd, _ := os.Getwd()
	repo, err := RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	as, err := FindAssets(repo)
	missing(err)
	guest := filepath.Join(repo, ".tools", "guest")
	if _, err := guestimage.Load(guest); err != nil {
		if ci {
			t.Fatalf("no guest image (make test builds it): %v", err)
		}
		t.Skipf("needs the guest image (make guest): %v", err)
	}
	mkfs, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		if ci {
			t.Fatal("no mkfs.erofs (make tools installs erofs-utils)")
		}
		t.Skip("needs mkfs.erofs (Debian's erofs-utils; make tools installs it)")
	}
	dir := t.TempDir()
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
	missing(err)
	for _, l := range lines {
		t.Log(l)
	}
	if verdict != verdictPass {
		t.Fatalf("verdict %q after %v\nconsole ends:\n%s", verdict, time.Since(start).Round(time.Millisecond), tail(console, 120))
	}
	t.Logf("nested qemu backend run: PASS in %v wall", time.Since(start).Round(time.Millisecond))
}
