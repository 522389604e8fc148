package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// kubeletSwap writes key's value into a new timestamped directory of dir
// and swaps dir's ..data symlink to it, as kubelet's atomic writer
// updates a ConfigMap volume; key is a symlink through ..data.
func kubeletSwap(t *testing.T, dir, stamp, value string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stamp, "key"), []byte(value), 0o644); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(stamp, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old == "" {
		if err := os.Symlink("..data/key", filepath.Join(dir, "key")); err != nil {
			t.Fatal(err)
		}
	} else if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

// TestVMVolumesOnQEMU: through ctr, a VM container on the qemu hypervisor
// with host bind mounts: a read-only directory (laid out as kubelet lays
// out a ConfigMap) shows its file and, after a kubelet-style update on the
// host, the new contents within seconds; a file bind (like /etc/hosts)
// arrives; a writable bind is writable in the guest and a read-only one
// is not. Afterwards no QEMU and nothing of the container is left.
func TestVMVolumesOnQEMU(t *testing.T) {
	b := needBench(t)
	if testing.Short() {
		t.Skip("boots a VM in QEMU (TCG without KVM: about 15 s); skipped with -short")
	}
	cfg, _ := qemuVirtConfig(t)
	cm, scratch := t.TempDir(), t.TempDir()
	kubeletSwap(t, cm, "..2026_12_07_14_00_00.1", "one")
	// A volume at the bound, 3 MiB, goes in one request.
	big := t.TempDir()
	blob := make([]byte, 3<<20)
	for i := range blob {
		blob[i] = byte(i * 7 % 251)
	}
	if err := os.WriteFile(filepath.Join(big, "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("10.88.0.7 volume-pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := name(t, "")
	cleanupContainer(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, stderr, err := b.Ctr(ctx, "run", "-d", "--runtime", husk, "--runtime-config-path", cfg,
		"--annotation", "io.husk.handler=virt",
		"--mount", "type=bind,src="+cm+",dst=/data,options=rbind:ro",
		"--mount", "type=bind,src="+hosts+",dst=/etc/hosts,options=rbind:rw",
		"--mount", "type=bind,src="+scratch+",dst=/scratch,options=rbind:rw",
		"--mount", "type=bind,src="+big+",dst=/big,options=rbind:ro",
		devenv.BusyboxRef, id, "sleep", "1000"); err != nil {
		t.Fatalf("ctr run -d: %v\n%s", err, stderr)
	}
	t.Logf("ctr run -d with four volumes (3 MiB in all): %v", time.Since(start).Round(time.Millisecond))
	n := 0
	exec := func(script string) (string, int) {
		n++
		out, _, err := b.Ctr(ctx, "task", "exec", "--exec-id", fmt.Sprintf("e%d", n), id, "sh", "-c", script)
		return out, exitCode(err)
	}
	if out, st := exec("cat /data/key"); out != "one" || st != 0 {
		t.Errorf("/data/key in the guest: %q (exit %d), want one", out, st)
	}
	if out, st := exec("cat /etc/hosts"); out != "10.88.0.7 volume-pod\n" || st != 0 {
		t.Errorf("/etc/hosts in the guest: %q (exit %d)", out, st)
	}
	if out, st := exec("echo written > /scratch/f && cat /scratch/f"); out != "written\n" || st != 0 {
		t.Errorf("writing the writable bind: %q (exit %d)", out, st)
	}
	if _, st := exec("echo x > /data/new"); st == 0 {
		t.Error("the read-only bind is writable in the guest")
	}
	if out, _ := exec("sha256sum /big/blob"); out != hex.EncodeToString(sum[:])+"  /big/blob\n" {
		t.Errorf("the 3 MiB file in the guest: %q", out)
	}

	kubeletSwap(t, cm, "..2026_12_07_14_05_00.2", "two")
	changed := time.Now()
	for {
		out, _ := exec("cat /data/key")
		if out == "two" {
			break
		}
		if time.Since(changed) > 30*time.Second {
			t.Fatalf("/data/key in the guest is still %q 30 s after the host's update", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the host's update reached the guest after %v", time.Since(changed).Round(time.Millisecond))
	if out, _ := exec("ls -a /data | tr '\\n' ' '"); out != ". .. ..2026_12_07_14_05_00.2 ..data key " {
		t.Errorf("/data in the guest after the update: %q", out)
	}

	removeVMContainer(ctx, t, b, id)
}
