package devenv

import (
	"os"
	"path/filepath"
	"testing"
)

// AllowTraverse lets every user through dir and its parents (o+x), as
// through containerd's /run/containerd and /var/lib/containerd: a
// user-namespaced container's root, an unprivileged ID on the host, must
// reach its rootfs under the bench's state, and the bench's temporary
// directories are 0700. The modes are restored when the test ends.
func AllowTraverse(tb testing.TB, dir string) {
	tb.Helper()
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			tb.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o001 == 0 {
			if err := os.Chmod(d, mode|0o001); err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = os.Chmod(d, mode) })
		}
		if d == "/" {
			return
		}
	}
}
