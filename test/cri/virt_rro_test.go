package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestVirtPodRecursiveReadOnlyMount: a recursiveReadOnly volume (readonly,
// recursive_read_only, private propagation, as kubelet mounts one) in a VM
// pod: neither its top nor what is mounted beneath it on the host can be
// written in the guest, and the guest's copy follows the host's changes as
// a read-only volume's does.
func TestVirtPodRecursiveReadOnlyMount(t *testing.T) {
	src := t.TempDir()
	nested := filepath.Join(src, "nested")
	if err := os.Mkdir(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", nested, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting the nested tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(nested, unix.MNT_DETACH) })
	p := runVirtPod(t, podOpts{})
	id := p.startWith(t, "rro", map[string]any{
		"mounts": []map[string]any{{
			"container_path":      "/mnt",
			"host_path":           src,
			"readonly":            true,
			"recursive_read_only": true,
			"propagation":         0, // PROPAGATION_PRIVATE
		}},
	}, "sleep", "3600")
	if got := execSync(t, id, "sh", "-c", rroProbe); got != "top-readonly\nnested-readonly\n" {
		t.Errorf("rro volume in the guest:\n%s\nwant both read-only", got)
	}
	if err := os.WriteFile(filepath.Join(nested, "later"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if got = execSync(t, id, "sh", "-c", "cat /mnt/nested/later 2>/dev/null || true"); strings.Contains(got, "from the host") {
			break
		}
	}
	if got != "from the host\n" {
		t.Errorf("a file the host wrote under the rro volume reads %q in the guest, want it resynced", got)
	}
}
