package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/huskrt/husk/vmm/virtio/blk"
)

// newSlotTable is what New builds for boot disks with the given ids and n
// slots, without KVM: the devices, not their transports.
func newSlotTable(t *testing.T, bootIDs []string, n int) *slotTable {
	t.Helper()
	st := &slotTable{log: slog.New(slog.DiscardHandler)}
	for _, id := range bootIDs {
		d, err := blk.Open(image(t, 4096), true, id)
		if err != nil {
			t.Fatal(err)
		}
		st.boot = append(st.boot, d)
	}
	for range n {
		d, err := blk.New(blk.Config{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		st.slots = append(st.slots, d)
	}
	t.Cleanup(func() {
		st.close()
		for _, d := range slices.Concat(st.boot, st.slots) {
			d.Close()
		}
	})
	return st
}

// image writes a disk image of size bytes and returns its path.
func image(t *testing.T, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openImage opens (and locks) a new image as the shim would.
func openImage(t *testing.T, size int, readOnly bool) *os.File {
	t.Helper()
	f, err := blk.OpenLocked(image(t, size), readOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func capacity(d *blk.Device) uint64 {
	b := make([]byte, 8)
	d.ReadConfig(0, b)
	return binary.LittleEndian.Uint64(b)
}

// TestAttachDisk: a disk goes into the first empty slot of its kind with
// its id and capacity; each refusal says why and leaves the file open and
// the caller's.
func TestAttachDisk(t *testing.T) {
	st := newSlotTable(t, []string{"boot"}, 2)
	if err := st.attach(openImage(t, 8*blk.SectorSize, true), true, "c1"); err != nil {
		t.Fatal(err)
	}
	if d := st.slots[0]; d.ID() != "c1" || capacity(d) != 8 {
		t.Fatalf("slot 0: id %q, capacity %d", d.ID(), capacity(d))
	}
	rwFile, err := os.OpenFile(image(t, 4096), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rwFile.Close()
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	tests := []struct {
		name     string
		f        *os.File
		readOnly bool
		id       string
		want     error
	}{
		{"the id of an attached disk", openImage(t, 4096, true), true, "c1", ErrDiskExists},
		{"the id of a boot disk", openImage(t, 4096, true), true, "boot", ErrDiskExists},
		{"no id", openImage(t, 4096, true), true, "", ErrBadDisk},
		{"an id over 20 bytes", openImage(t, 4096, true), true, strings.Repeat("x", 21), ErrBadDisk},
		{"an id with a NUL", openImage(t, 4096, true), true, "c\x002", ErrBadDisk},
		{"less than a sector", openImage(t, 511, true), true, "small", ErrBadDisk},
		{"a directory", dir, true, "dir", ErrBadDisk},
		{"a writable disk (slots are read-only)", rwFile, false, "rw", ErrNoFreeSlot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := st.attach(tt.f, tt.readOnly, tt.id); !errors.Is(err, tt.want) {
				t.Fatalf("attach = %v, want %v", err, tt.want)
			}
			if _, err := tt.f.Stat(); err != nil {
				t.Errorf("the refused file was closed: %v", err)
			}
			if !st.slots[1].Empty() {
				t.Error("a refused disk took a slot")
			}
		})
	}
	if err := st.attach(openImage(t, 4096, true), true, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := st.attach(openImage(t, 4096, true), true, "c3"); !errors.Is(err, ErrNoFreeSlot) {
		t.Fatalf("attach to full slots = %v, want ErrNoFreeSlot", err)
	}
	st.close()
	if err := st.attach(openImage(t, 4096, true), true, "c4"); !errors.Is(err, ErrState) {
		t.Errorf("attach after close = %v, want ErrState", err)
	}
	if err := st.detach("c1"); !errors.Is(err, ErrState) {
		t.Errorf("detach after close = %v, want ErrState", err)
	}
}

// TestDetachDisk: detaching empties the slot (capacity 0, no id), closes
// the file, releases its lock and frees the slot for the next disk; boot
// disks and unknown ids are not found.
func TestDetachDisk(t *testing.T) {
	st := newSlotTable(t, []string{"boot"}, 1)
	path := image(t, 4*blk.SectorSize)
	f, err := blk.OpenLocked(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.attach(f, true, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := blk.OpenLocked(path, false); !errors.Is(err, blk.ErrLocked) {
		t.Errorf("a writer while the VM reads the image: %v, want blk.ErrLocked", err)
	}
	for _, id := range []string{"", "c2", "boot"} {
		if err := st.detach(id); !errors.Is(err, ErrDiskNotFound) {
			t.Errorf("detach(%q) = %v, want ErrDiskNotFound", id, err)
		}
	}
	if err := st.detach("c1"); err != nil {
		t.Fatal(err)
	}
	if d := st.slots[0]; !d.Empty() || d.ID() != "" || capacity(d) != 0 {
		t.Errorf("slot after detach: empty %v, id %q, capacity %d", d.Empty(), d.ID(), capacity(d))
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the VM did not close the detached file: Close = %v", err)
	}
	w, err := blk.OpenLocked(path, false)
	if err != nil {
		t.Fatalf("the lock outlived the detach: %v", err)
	}
	w.Close()
	if err := st.detach("c1"); !errors.Is(err, ErrDiskNotFound) {
		t.Errorf("second detach = %v", err)
	}
	if err := st.attach(openImage(t, 4096, true), true, "c1"); err != nil {
		t.Errorf("the id and the slot are free again: %v", err)
	}
}

// TestSlotsHammer attaches and detaches from several goroutines at once
// (run with -race): each disk lands in a slot of its own, and ids stay
// unique.
func TestSlotsHammer(t *testing.T) {
	const goroutines, rounds, slots = 6, 50, 4
	st := newSlotTable(t, nil, slots)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", g)
			for range rounds {
				f := openImage(t, 4096, true)
				err := st.attach(f, true, id)
				if errors.Is(err, ErrNoFreeSlot) {
					continue
				}
				if err != nil {
					t.Errorf("attach %s: %v", id, err)
					return
				}
				held := 0
				for _, d := range st.slots {
					if d.ID() == id {
						held++
					}
				}
				if held != 1 {
					t.Errorf("%s in %d slots", id, held)
				}
				if err := st.detach(id); err != nil {
					t.Errorf("detach %s: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, d := range st.slots {
		if !d.Empty() {
			t.Errorf("slot %d still holds %q", i, d.ID())
		}
	}
}

func TestSlotsInTheConfig(t *testing.T) {
	kernel := image(t, 64)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"negative slots", Config{Kernel: kernel, DiskSlots: -1}},
		{"slots over the device limit", Config{Kernel: kernel, DiskSlots: MaxVirtioDevices, RNG: true}},
		{"slots and disks over the device limit", Config{Kernel: kernel, DiskSlots: MaxVirtioDevices - 1, Disks: make([]Disk, 2)}},
	} {
		if err := checkConfig(&tt.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tt.name, err)
		}
	}
	if err := checkConfig(&Config{Kernel: kernel, DiskSlots: MaxVirtioDevices}); err != nil {
		t.Errorf("%d slots: %v", MaxVirtioDevices, err)
	}
}
