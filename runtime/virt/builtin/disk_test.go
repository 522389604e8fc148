//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/vmm/virtio/blk"
)

func diskImage(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Repeat("d", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// holdsFile reports whether process pid has path open.
func holdsFile(t *testing.T, pid int, path string) bool {
	t.Helper()
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return true
		}
	}
	return false
}

// TestAttachDetach: the parent opens and locks a disk and passes its
// descriptor; the confined VMM (which could not open it) uses it; the
// lock lasts while the VMM holds it; errors come back classified.
func TestAttachDetach(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	v := startFake(t, cfg)
	ctx := context.Background()
	a, b, c := diskImage(t, "a.img"), diskImage(t, "b.img"), diskImage(t, "c.img")

	if err := v.AttachDisk(ctx, a, true, "disk-a"); err != nil {
		t.Fatal(err)
	}
	if !holdsFile(t, v.Pid(), a) {
		t.Error("the VMM does not hold the attached disk")
	}
	if kinds := fdKinds(t, v.Pid()); len(kinds) == 0 {
		t.Error("no descriptors")
	}
	// A writer cannot have the image while the VM reads it.
	if f, err := blk.OpenLocked(a, false); !errors.Is(err, blk.ErrLocked) {
		if f != nil {
			f.Close()
		}
		t.Errorf("exclusive open of an attached disk: %v, want ErrLocked", err)
	}
	s, err := v.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disks) != 1 || s.Disks[0].Serial != "disk-a" || s.Disks[0].BytesRead != 512 {
		t.Errorf("disk stats %+v (the fake reads a sector through the passed descriptor)", s.Disks)
	}
	if s.MemoryMiB != cfg.MemoryMiB || s.RSSBytes == 0 || s.Uptime <= 0 || s.Exits["io"] != 7 {
		t.Errorf("stats %+v", s)
	}

	for _, tc := range []struct {
		path     string
		readOnly bool
		serial   string
		want     error
	}{
		{b, true, "disk-a", errdefs.ErrAlreadyExists},
		{b, false, "disk-b", virt.ErrNoFreeSlot}, // slots are read-only
		{b, true, "", errdefs.ErrInvalidArgument},
		{b, true, strings.Repeat("s", 21), errdefs.ErrInvalidArgument},
		{filepath.Join(t.TempDir(), "missing"), true, "disk-x", os.ErrNotExist},
	} {
		if err := v.AttachDisk(ctx, tc.path, tc.readOnly, tc.serial); !errors.Is(err, tc.want) {
			t.Errorf("attach %s ro=%v %q: %v, want %v", filepath.Base(tc.path), tc.readOnly, tc.serial, err, tc.want)
		}
	}
	if err := v.AttachDisk(ctx, b, true, "disk-b"); err != nil {
		t.Fatal(err)
	}
	if err := v.AttachDisk(ctx, c, true, "disk-c"); !errors.Is(err, virt.ErrNoFreeSlot) {
		t.Errorf("a third disk in two slots: %v", err)
	}
	if holdsFile(t, v.Pid(), c) {
		t.Error("the VMM kept the descriptor of a disk it refused")
	}

	if err := v.DetachDisk(ctx, "disk-a"); err != nil {
		t.Fatal(err)
	}
	if holdsFile(t, v.Pid(), a) {
		t.Error("the VMM still holds a detached disk")
	}
	f, err := blk.OpenLocked(a, false)
	if err != nil {
		t.Errorf("the detached disk is still locked: %v", err)
	} else {
		f.Close()
	}
	if err := v.DetachDisk(ctx, "disk-a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("detach twice: %v", err)
	}
}
