package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/test/devenv"
)

// rroProbe writes at the top of the bind at /mnt and inside the mount
// nested under it, and says which writes the kernel refused.
const rroProbe = `
if touch /mnt/top 2>/dev/null; then echo top-writable; else echo top-readonly; fi
if touch /mnt/nested/inner 2>/dev/null; then echo nested-writable; else echo nested-readonly; fi
`

// nestedMountSource returns a host directory with a tmpfs mounted on its
// subdirectory nested: a bind of it with rbind carries the tmpfs along.
func nestedMountSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	nested := filepath.Join(src, "nested")
	if err := os.Mkdir(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", nested, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting the nested tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(nested, unix.MNT_DETACH) })
	return src
}

// TestRecursiveReadOnlyBind runs `ctr run --mount ...,options=rbind:rro`:
// under husk, as under runc, neither the bind nor the tmpfs nested under it
// can be written. The same bind with plain ro is the control: only its top
// is read-only, the nested tmpfs stays writable (so the probe tells the two
// apart).
func TestRecursiveReadOnlyBind(t *testing.T) {
	needBench(t)
	src := nestedMountSource(t)
	cases := []struct {
		options string
		want    string
	}{
		{"rbind:rro", "top-readonly\nnested-readonly\n"},
		{"rbind:ro", "top-readonly\nnested-writable\n"},
		{"rbind:rw", "top-writable\nnested-writable\n"},
	}
	for i, tc := range cases {
		for _, rt := range []string{runc, husk} {
			t.Run(tc.options+"/"+shortRuntime(rt), func(t *testing.T) {
				id := name(t, string(rune('a'+i))+shortRuntime(rt))
				cleanupContainer(t, id)
				mount := "type=bind,src=" + src + ",dst=/mnt,options=" + tc.options
				out := ctr(t, "run", "--rm", "--runtime", rt, "--mount", mount, devenv.BusyboxRef, id, "sh", "-c", rroProbe)
				if out != tc.want {
					t.Fatalf("%s with %s: got\n%s\nwant\n%s", shortRuntime(rt), tc.options, out, tc.want)
				}
			})
		}
	}
}
