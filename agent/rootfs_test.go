package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// fakeSysBlock makes a /sys/block with one disk, vda, of serial and size.
func fakeSysBlock(t *testing.T, serial, size string) string {
	t.Helper()
	dir := t.TempDir()
	d := filepath.Join(dir, "vda")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"serial": serial + "\n", "size": size + "\n"} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A disk whose node answers ENXIO (sysfs lists it before its block device
// goes live) is waited for, not handed to mount: that window failed a
// container's start in CI with "mounting disk ... no such device or address".
func TestFindDiskWaitsUntilTheNodeOpens(t *testing.T) {
	opens := 0
	f := diskFinder{
		sysBlock: fakeSysBlock(t, "r1", "2048"),
		dev:      "/dev-of-test",
		open: func(p string) error {
			if p != "/dev-of-test/vda" {
				t.Errorf("opened %s", p)
			}
			if opens++; opens < 3 {
				return unix.ENXIO
			}
			return nil
		},
		wait: 5 * time.Second,
	}
	node, err := f.find("r1")
	if err != nil || node != "/dev-of-test/vda" || opens != 3 {
		t.Fatalf("find = %q, %v after %d opens; want /dev-of-test/vda after 3", node, err, opens)
	}
}

func TestFindDiskGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name, serial, size string
		open               error
		want               string
		notFound           bool
	}{
		{"no such serial", "r2", "2048", nil, "no such serial", true},
		{"no capacity", "r1", "0", nil, "no capacity yet", true},
		{"never live", "r1", "2048", unix.ENXIO, "does not open yet", true},
		{"other error at once", "r1", "2048", unix.EACCES, "permission denied", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := diskFinder{
				sysBlock: fakeSysBlock(t, "r1", tc.size),
				dev:      "/dev",
				open:     func(string) error { return tc.open },
				wait:     50 * time.Millisecond,
			}
			_, err := f.find(tc.serial)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errdefs.ErrNotFound) != tc.notFound {
				t.Fatalf("find(%q) = %v; want an error with %q (not found: %v)", tc.serial, err, tc.want, tc.notFound)
			}
		})
	}
}
