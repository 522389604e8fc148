package vmm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/vmm/acpi"
	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/virtio/blk"
	"github.com/huskrt/husk/vmm/virtio/vsock"
)

// kernelAddr is where the tiny ELF kernels load and start.
const kernelAddr = 0x10_0000

// writeKernel writes g as an ELF vmlinux: one PT_LOAD at kernelAddr.
func writeKernel(t *testing.T, g guest) string {
	t.Helper()
	le := binary.LittleEndian
	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize+phsize)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], kernelAddr)
	le.PutUint64(b[32:], ehsize)
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], 1)
	p := b[ehsize:]
	le.PutUint32(p[0:], 1) // PT_LOAD
	le.PutUint32(p[4:], 5)
	le.PutUint64(p[8:], ehsize+phsize)
	le.PutUint64(p[16:], kernelAddr)
	le.PutUint64(p[24:], kernelAddr)
	le.PutUint64(p[32:], uint64(len(g.code)))
	le.PutUint64(p[40:], uint64(len(g.code)))
	path := filepath.Join(t.TempDir(), g.name+".elf")
	if err := os.WriteFile(path, append(b, g.code...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newVM builds a VM around g, or skips without KVM.
func newVM(t *testing.T, g guest, edit func(*Config)) (*VM, *bytes.Buffer) {
	t.Helper()
	var console bytes.Buffer
	cfg := Config{Kernel: writeKernel(t, g), MemorySize: 8 << 20, VCPUs: 1, Serial: &console}
	if edit != nil {
		edit(&cfg)
	}
	v, err := New(cfg)
	if errors.Is(err, kvm.ErrUnavailable) {
		t.Skipf("needs KVM: %v", err)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return v, &console
}

func TestGuestEndsTheRun(t *testing.T) {
	tests := []struct {
		g      guest
		reason ExitReason
	}{
		{powerOffGuest, ExitPowerOff},
		{i8042Guest, ExitReboot},
		{acpiResetGuest, ExitReboot},
	}
	for _, tt := range tests {
		t.Run(tt.g.name, func(t *testing.T) {
			v, _ := newVM(t, tt.g, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			reason, err := v.Run(ctx)
			if reason != tt.reason || err != nil {
				t.Fatalf("Run = %v, %v; want %v", reason, err, tt.reason)
			}
		})
	}
}

func TestConsoleAndBootTimerReachTheHost(t *testing.T) {
	// Two images: a writable disk locks its image exclusively.
	roDisk, rwDisk := image(t, 4096), image(t, 4096)
	v, console := newVM(t, powerOffGuest, func(c *Config) {
		c.Disks = []Disk{{Path: roDisk, ReadOnly: true, ID: "ro"}, {Path: rwDisk}}
		c.DiskSlots = 2
		c.RNG = true
		c.Vsock = &Vsock{CID: 3, UDSPath: filepath.Join(t.TempDir(), "v.sock")}
		c.VCPUs = 2
	})
	if reason, err := v.Run(context.Background()); reason != ExitPowerOff || err != nil {
		t.Fatalf("Run = %v, %v", reason, err)
	}
	if console.String() != "hi" {
		t.Errorf("console %q, want \"hi\"", console.String())
	}
	s := v.Stats()
	if len(s.BootMarks) != 1 || s.BootMarks[0] <= 0 {
		t.Errorf("boot marks %v, want one", s.BootMarks)
	}
	if len(s.Disks) != 4 || s.Disks[0].ID != "ro" || s.Disks[0].Empty || !s.Disks[2].Empty || !s.Disks[3].Empty {
		t.Errorf("disk stats %+v, want two boot disks and two empty slots", s.Disks)
	}
	// The guest's port writes (two console bytes, the sleep register) and
	// its boot-timer store.
	if s.Exits[ExitsIO] < 3 || s.Exits[ExitsMMIO] < 1 || len(s.Exits) != 5 {
		t.Errorf("exits %v", s.Exits)
	}
	// A stopped VM still takes a disk (the guest is gone, so nothing sees
	// it); Close then closes its file.
	f, err := blk.OpenLocked(image(t, 4096), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AttachDisk(f, true, "late"); err != nil { // the VM owns f now
		f.Close()
		t.Fatal(err)
	}
	if s := v.Stats(); s.Disks[2].ID != "late" || s.Disks[2].Empty {
		t.Errorf("slot after AttachDisk: %+v", s.Disks[2])
	}
	// P7's measurement: the process's CPU time at vCPU 0's first KVM_RUN,
	// which is at most what the process has used by now.
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	if now := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()); s.FirstRunCPU <= 0 || s.FirstRunCPU > now {
		t.Errorf("FirstRunCPU %v, want in (0, %v]", s.FirstRunCPU, now)
	}
}

func TestStopEndsASpinningGuest(t *testing.T) {
	v, _ := newVM(t, spinGuest, nil)
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); !errors.Is(err, ErrState) {
		t.Errorf("Close while running = %v, want ErrState", err)
	}
	if err := v.Start(context.Background()); !errors.Is(err, ErrState) {
		t.Errorf("second Start = %v, want ErrState", err)
	}
	time.Sleep(10 * time.Millisecond)
	v.Stop()
	if reason, err := v.Wait(); reason != ExitStopped || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, %v; want stopped, context.Canceled", reason, err)
	}
}

func TestNewRejects(t *testing.T) {
	kernel := filepath.Join(t.TempDir(), "not-a-kernel")
	os.WriteFile(kernel, []byte("#!/bin/sh\n"), 0o644)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no kernel", Config{MemorySize: 8 << 20}, ErrConfig},
		{"too many devices", Config{Kernel: kernel, MemorySize: 8 << 20, RNG: true, Disks: make([]Disk, MaxVirtioDevices)}, ErrConfig},
		{"missing disk", Config{Kernel: kernel, MemorySize: 8 << 20, Disks: []Disk{{Path: "/nonexistent/disk"}}}, os.ErrNotExist},
		{"not a kernel", Config{Kernel: kernel, MemorySize: 8 << 20}, nil},
		{"tap name too long", Config{Kernel: kernel, MemorySize: 8 << 20, Nets: []Net{{Tap: "a-tap-name-over-15-bytes"}}}, nil},
		{"multicast MAC", Config{Kernel: kernel, MemorySize: 8 << 20, Nets: []Net{{Tap: "husktest0", MAC: [6]byte{1}}}}, ErrConfig},
		{"no tap name", Config{Kernel: kernel, MemorySize: 8 << 20, Nets: []Net{{}}}, ErrConfig},
		{"tap name and file", Config{Kernel: kernel, MemorySize: 8 << 20, Nets: []Net{{Tap: "husktest0", File: os.Stdin}}}, ErrConfig},
		{"too many devices with nets", Config{Kernel: kernel, MemorySize: 8 << 20, Nets: make([]Net, 10), Disks: make([]Disk, 10)}, ErrConfig},
		{"too many devices with slots", Config{Kernel: kernel, MemorySize: 8 << 20, DiskSlots: MaxVirtioDevices - 1, Disks: make([]Disk, 2)}, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg)
			if errors.Is(err, kvm.ErrUnavailable) {
				t.Skipf("needs KVM: %v", err)
			}
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestVirtioMMIOCmdline(t *testing.T) {
	got := withVirtioMMIODevices("console=ttyS0", []acpi.MMIODevice{{Base: 0xd000_0000, Size: 0x1000, GSI: 5}, {Base: 0xd000_1000, Size: 0x1000, GSI: 6}})
	want := "console=ttyS0 virtio_mmio.device=4096@0xd0000000:5 virtio_mmio.device=4096@0xd0001000:6"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestGuestEncodings reassembles each guest's asm with GNU as.
func TestGuestEncodings(t *testing.T) {
	as, err := exec.LookPath("as")
	if err != nil {
		t.Skip("GNU as (binutils) not installed: cannot cross-check the guest encodings")
	}
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("objcopy (binutils) not installed")
	}
	for _, g := range []guest{powerOffGuest, i8042Guest, acpiResetGuest, spinGuest} {
		t.Run(g.name, func(t *testing.T) {
			dir := t.TempDir()
			src, obj, bin := filepath.Join(dir, "g.s"), filepath.Join(dir, "g.o"), filepath.Join(dir, "g.bin")
			os.WriteFile(src, []byte(fmt.Sprintf(".intel_syntax noprefix\n.code64\n%s", g.asm)), 0o600)
			if out, err := exec.Command(as, "--64", "-o", obj, src).CombinedOutput(); err != nil {
				t.Fatalf("as: %v\n%s", err, out)
			}
			if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", obj, bin).CombinedOutput(); err != nil {
				t.Fatalf("objcopy: %v\n%s", err, out)
			}
			want, _ := os.ReadFile(bin)
			if !bytes.Equal(g.code, want) {
				t.Fatalf("committed bytes differ from the assembled asm\n got % x\nwant % x", g.code, want)
			}
		})
	}
}

// TestDial reaches the VM's hybrid vsock socket: a guest without a vsock
// driver never accepts, so the device closes the connection and Dial says
// the guest refused (the accepted path, with data both ways, is
// vsock.TestDial over a simulated driver). A VM without vsock has nothing
// to dial.
func TestDial(t *testing.T) {
	v, _ := newVM(t, spinGuest, func(c *Config) {
		c.Vsock = &Vsock{CID: 3, UDSPath: filepath.Join(t.TempDir(), "v.sock")}
	})
	start := time.Now()
	if _, err := v.Dial(5000); !errors.Is(err, vsock.ErrDialRefused) {
		t.Errorf("Dial = %v, want vsock.ErrDialRefused", err)
	}
	if d := time.Since(start); d > DialTimeout {
		t.Errorf("Dial took %v", d)
	}
	bare, _ := newVM(t, spinGuest, nil)
	if _, err := bare.Dial(5000); !errors.Is(err, ErrNoVsock) {
		t.Errorf("Dial without vsock = %v, want ErrNoVsock", err)
	}
}
