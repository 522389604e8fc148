package blk

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeImage(t *testing.T, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenLockedConflicts: readers share an image, a writer has it alone,
// whichever comes first; the lock goes with the file.
func TestOpenLockedConflicts(t *testing.T) {
	tests := []struct {
		name          string
		first, second bool // read-only
		conflict      bool
	}{
		{"two readers", true, true, false},
		{"reader then writer", true, false, true},
		{"writer then reader", false, true, true},
		{"two writers", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeImage(t, 4096)
			f, err := OpenLocked(path, tt.first)
			if err != nil {
				t.Fatal(err)
			}
			g, err := OpenLocked(path, tt.second)
			if tt.conflict {
				if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
					t.Fatalf("second open = %v, want ErrLocked naming the image", err)
				}
			} else if err != nil {
				t.Fatalf("second open = %v", err)
			} else {
				g.Close()
			}
			f.Close()
			if g, err = OpenLocked(path, tt.second); err != nil {
				t.Fatalf("open after the first closed = %v", err)
			}
			g.Close()
		})
	}
	if _, err := OpenLocked(filepath.Join(t.TempDir(), "missing"), true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing image = %v", err)
	}
}

// TestOpenOwnsTheFile: Open locks the image and the device's Close lets
// it go.
func TestOpenOwnsTheFile(t *testing.T) {
	path := writeImage(t, 3*SectorSize+17)
	d, err := Open(path, false, "boot")
	if err != nil {
		t.Fatal(err)
	}
	if c := configCapacity(d); c != 3 {
		t.Errorf("capacity %d sectors, want 3", c)
	}
	if _, err := Open(path, true, "again"); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open of a writable image = %v, want ErrLocked", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := OpenLocked(path, false)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	f.Close()
}

// TestSize: a regular file by stat, a block device by BLKGETSIZE64,
// anything else refused.
func TestSize(t *testing.T) {
	path := writeImage(t, 12345)
	tests := []struct {
		name string
		path string
		size int64
		err  error
	}{
		{"regular file", path, 12345, nil},
		{"empty file", writeImage(t, 0), 0, nil},
		{"directory", t.TempDir(), 0, ErrNotADisk},
		{"character device", "/dev/null", 0, ErrNotADisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			size, err := Size(f)
			if !errors.Is(err, tt.err) || (err == nil && size != tt.size) {
				t.Errorf("Size = %d, %v; want %d, %v", size, err, tt.size, tt.err)
			}
		})
	}
}

// TestBlockDeviceSize sizes a loop device (stat says 0 for it). It needs
// root and losetup.
func TestBlockDeviceSize(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a loop device")
	}
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Skip("needs losetup (util-linux)")
	}
	const size = 3<<20 + 4096
	out, err := exec.Command(losetup, "--find", "--show", writeImage(t, size)).CombinedOutput()
	if err != nil {
		t.Skipf("cannot create a loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	f, err := OpenLocked(dev, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Logf("stat size of %s: %d", dev, fi.Size())
	}
	got, err := Size(f)
	if err != nil || got != size {
		t.Fatalf("Size(%s) = %d, %v; want %d", dev, got, err, size)
	}
	cfg, err := FileConfig(f, true, "loop")
	if err != nil || cfg.Size != size {
		t.Fatalf("FileConfig = %+v, %v", cfg, err)
	}
	if _, err := OpenLocked(dev, false); !errors.Is(err, ErrLocked) {
		t.Errorf("writer while a reader holds %s = %v, want ErrLocked", dev, err)
	}
}

// TestFileConfig: a writable disk needs a file open for writing; the size
// comes from the file; the id is bounded.
func TestFileConfig(t *testing.T) {
	path := writeImage(t, 8*SectorSize)
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rw, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	tests := []struct {
		name     string
		f        *os.File
		readOnly bool
		id       string
		err      error
	}{
		{"read-only disk on a read-only file", ro, true, "a", nil},
		{"read-only disk on a read-write file", rw, true, "a", nil},
		{"writable disk on a read-write file", rw, false, "a", nil},
		{"writable disk on a read-only file", ro, false, "a", ErrAccessMode},
		{"id too long", ro, true, strings.Repeat("x", IDBytes+1), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := FileConfig(tt.f, tt.readOnly, tt.id)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("FileConfig = %v", err)
			case tt.err == errAny && err == nil:
				t.Fatal("FileConfig accepted it")
			case tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err):
				t.Fatalf("FileConfig = %v, want %v", err, tt.err)
			case err == nil && (cfg.Size != 8*SectorSize || cfg.ReadOnly != tt.readOnly || cfg.ID != tt.id || cfg.Backend != tt.f):
				t.Errorf("config %+v", cfg)
			}
		})
	}
}
