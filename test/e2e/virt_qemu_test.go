package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

// qemuBinary is Debian's QEMU, which the qemu hypervisor runs by default.
const qemuBinary = "/usr/bin/qemu-system-x86_64"

// TestVMContainerOnQEMU runs a container in a VM of its own through ctr
// on the qemu hypervisor ([virt] hypervisor = "qemu"): with KVM where it
// runs a guest, else TCG (this host), and the agent over vhost-vsock or
// virtio-serial (this host). Its output comes from the guest's kernel, its
// exit status reaches ctr, and once it is removed no QEMU and nothing of
// the container is left.
func TestVMContainerOnQEMU(t *testing.T) {
	b := needBench(t)
	if testing.Short() {
		t.Skip("boots a VM in QEMU (TCG without KVM: about 15 s); skipped with -short")
	}
	cfg, m := qemuVirtConfig(t)
	id := name(t, "")
	cleanupContainer(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, stderr, err := b.Ctr(ctx, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg,
		"--annotation", "io.husk.handler=virt", devenv.BusyboxRef, id, "sh", "-c", "echo hello from a VM; uname -r; exit 3")
	if got := exitCode(err); got != 3 {
		t.Fatalf("exit status %d (%v), want 3\nstdout: %s\nstderr: %s", got, err, out, stderr)
	}
	if want := "hello from a VM\n" + m.Release + "\n"; out != want {
		t.Errorf("stdout %q, want %q (the guest's kernel)", out, want)
	}
	t.Logf("ctr run of a VM container on QEMU: %v, boot to VM stopped", time.Since(start).Round(time.Millisecond))
	requireClean(t, id)
	if pids := qemuOf(id); len(pids) > 0 {
		t.Errorf("QEMU %v of %s still runs after ctr run --rm", pids, id)
	}

	// A detached one runs in its QEMU until killed; then nothing is left.
	id2 := name(t, "detached")
	cleanupContainer(t, id2)
	if _, stderr, err := b.Ctr(ctx, "run", "-d", "--runtime", husk, "--runtime-config-path", cfg,
		"--annotation", "io.husk.handler=virt", devenv.BusyboxRef, id2, "sleep", "1000"); err != nil {
		t.Fatalf("ctr run -d: %v\n%s", err, stderr)
	}
	if pids := qemuOf(id2); len(pids) != 1 {
		t.Errorf("QEMU processes of the running %s: %v, want one", id2, pids)
	}
	removeVMContainer(ctx, t, b, id2)
}

// qemuOf returns the QEMU processes whose VM is named after id (the qemu
// hypervisor names each VM husk-<sandbox id>).
func qemuOf(id string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-name" && args[i+1] == "husk-"+id {
				pids = append(pids, filepath.Base(filepath.Dir(p)))
			}
		}
	}
	return pids
}

// qemuVirtConfig is a husk configuration whose VMs run on QEMU with the
// guest image in .tools/guest, and that image's manifest; it skips (fails
// under CI, where make test builds both) without them.
func qemuVirtConfig(t *testing.T) (string, *guestimage.Manifest) {
	t.Helper()
	ci := os.Getenv("CI") != ""
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(root, ".tools", "guest")
	m, err := guestimage.Load(guest)
	if err != nil {
		if ci {
			t.Fatalf("no guest image (make test builds it): %v", err)
		}
		t.Skipf("needs the guest image (make guest): %v", err)
	}
	if err := unix.Access(qemuBinary, unix.X_OK); err != nil {
		if ci {
			t.Fatalf("no %s (hack/install-tools.sh installs qemu-system-x86): %v", qemuBinary, err)
		}
		t.Skipf("needs %s (apt-get install qemu-system-x86): %v", qemuBinary, err)
	}
	cfg := filepath.Join(t.TempDir(), "qemu.toml")
	toml := "[virt]\nhypervisor = \"qemu\"\nguest_image = \"" + guest + "\"\nboot_timeout = \"180s\"\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, m
}

// removeVMContainer kills VM container id's task, deletes it (retrying
// until the shim has seen the exit) and the container, and checks that
// neither husk's state nor the container's QEMU is left.
func removeVMContainer(ctx context.Context, t *testing.T, b *devenv.Containerd, id string) {
	t.Helper()
	if _, stderr, err := b.Ctr(ctx, "task", "kill", "-s", "SIGKILL", id); err != nil {
		t.Fatalf("ctr task kill: %v\n%s", err, stderr)
	}
	for {
		if _, _, err := b.Ctr(ctx, "task", "delete", id); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the killed task %s was never deleted", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, stderr, err := b.Ctr(ctx, "container", "delete", id); err != nil {
		t.Fatalf("ctr container delete: %v\n%s", err, stderr)
	}
	requireClean(t, id)
	if pids := qemuOf(id); len(pids) > 0 {
		t.Errorf("QEMU %v of %s still runs after its task and container were deleted", pids, id)
	}
}
