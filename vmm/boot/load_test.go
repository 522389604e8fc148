package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/x86"
)

func newMem(t *testing.T, size uint64) *memory.Memory {
	t.Helper()
	mem, err := memory.New(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

func TestE820StepsAroundTheHoleAndTheBIOSArea(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name string
		size uint64
		want []E820Entry
	}{
		{"256 MiB", 256 << 20, []E820Entry{
			{0, 0x9fc00, E820RAM}, {0x9fc00, 0x400, E820Reserved}, {0xe0000, 0x20000, E820Reserved},
			{0x100000, 256<<20 - 0x100000, E820RAM},
		}},
		{"4 GiB: 1 GiB above the hole", 4 * gib, []E820Entry{
			{0, 0x9fc00, E820RAM}, {0x9fc00, 0x400, E820Reserved}, {0xe0000, 0x20000, E820Reserved},
			{0x100000, 3*gib - 0x100000, E820RAM}, {4 * gib, gib, E820RAM},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := E820(newMem(t, tt.size))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("E820 = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	if _, err := E820(newMem(t, 1<<20)); !errors.Is(err, ErrTooSmall) {
		t.Errorf("1 MiB of RAM: %v, want ErrTooSmall", err)
	}
}

func TestLoadBzImage(t *testing.T) {
	const ram = 128 << 20
	ti := goodImage()
	kernel := fakeBzImage(ti)
	initrd := bytes.Repeat([]byte("initrd!"), 1000)
	mem := newMem(t, ram)
	e, err := Load(mem, Config{Kernel: bytes.NewReader(kernel), Initrd: bytes.NewReader(initrd), Cmdline: "console=ttyS0 quiet", RSDP: 0xe0000})
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != Mode64 || e.Addr != KernelAddr+0x200 || e.Param != x86.ZeroPage {
		t.Errorf("entry %+v, want 64-bit at %#x with the zero page", e, KernelAddr+0x200)
	}
	img, _ := ParseBzImage(bytes.NewReader(kernel))
	code, _ := io.ReadAll(img.Kernel)
	if got, _ := mem.Slice(KernelAddr, uint64(len(code))); len(code) != ti.kernelSize || !bytes.Equal(got, code) {
		t.Error("protected-mode code is not at 1 MiB")
	}
	// The initrd sits page-aligned at the top of RAM, above what the
	// decompressor uses (pref_address + init_size).
	if e.InitrdAddr%memory.PageSize != 0 || e.InitrdAddr+uint64(len(initrd)) > ram || ram-e.InitrdAddr-uint64(len(initrd)) >= memory.PageSize {
		t.Errorf("initrd at %#x (+%#x), want page-aligned at the top of %#x", e.InitrdAddr, len(initrd), ram)
	}
	if got, _ := mem.Slice(e.InitrdAddr, uint64(len(initrd))); !bytes.Equal(got, initrd) {
		t.Error("initrd contents differ")
	}
	if got, _ := mem.Slice(CmdlineAddr, 20); string(got) != "console=ttyS0 quiet\x00" {
		t.Errorf("command line %q", got)
	}

	zp, _ := mem.Slice(x86.ZeroPage, zeroPageSize)
	le := binary.LittleEndian
	for _, f := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"boot flag", uint64(le.Uint16(zp[hdrBootFlag:])), bootFlagValue},
		{"header magic", uint64(le.Uint32(zp[hdrMagic:])), magicValue},
		{"type_of_loader", uint64(zp[hdrTypeOfLoader]), 0xff},
		{"cmd_line_ptr", uint64(le.Uint32(zp[hdrCmdLinePtr:])), CmdlineAddr},
		{"ramdisk_image", uint64(le.Uint32(zp[hdrRamdiskImage:])), e.InitrdAddr},
		{"ramdisk_size", uint64(le.Uint32(zp[hdrRamdiskSize:])), uint64(len(initrd))},
		{"ext_ramdisk_image", uint64(le.Uint32(zp[zpExtRamdiskImage:])), 0},
		{"acpi_rsdp_addr", le.Uint64(zp[zpACPIRSDPAddr:]), 0xe0000},
		{"sentinel", uint64(zp[0x1ef]), 0},
		{"e820_entries", uint64(zp[zpE820Entries]), 4},
		{"e820[3].addr", le.Uint64(zp[zpE820Table+3*e820EntrySize:]), ACPIEnd},
		{"e820[3].size", le.Uint64(zp[zpE820Table+3*e820EntrySize+8:]), ram - ACPIEnd},
		{"e820[3].type", uint64(le.Uint32(zp[zpE820Table+3*e820EntrySize+16:])), E820RAM},
	} {
		if f.got != f.want {
			t.Errorf("zero page %s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	ti := goodImage()
	kernel := fakeBzImage(ti)
	big := goodImage()
	big.initSize = 200 << 20
	tests := []struct {
		name string
		ram  uint64
		cfg  Config
		want error // nil: any error
	}{
		{"not a kernel", 64 << 20, Config{Kernel: bytes.NewReader([]byte("#!/bin/sh\n"))}, ErrNotBzImage},
		{"command line too long", 64 << 20, Config{Kernel: bytes.NewReader(kernel), Cmdline: string(bytes.Repeat([]byte("a"), 2048))}, nil},
		{"NUL in the command line", 64 << 20, Config{Kernel: bytes.NewReader(kernel), Cmdline: "a\x00b"}, nil},
		{"initrd larger than RAM", 64 << 20, Config{Kernel: bytes.NewReader(kernel), Initrd: bytes.NewReader(make([]byte, 64<<20))}, ErrTooSmall},
		{"initrd over the decompressor", 23 << 20, Config{Kernel: bytes.NewReader(kernel), Initrd: bytes.NewReader(make([]byte, 4<<20))}, ErrTooSmall},
		{"RAM smaller than the kernel's init_size", 64 << 20, Config{Kernel: bytes.NewReader(fakeBzImage(big)), Initrd: bytes.NewReader([]byte{1})}, ErrTooSmall},
		{"1 MiB of RAM", 1 << 20, Config{Kernel: bytes.NewReader(kernel)}, ErrTooSmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(newMem(t, tt.ram), tt.cfg)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Load = %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestInitrdRespectsInitrdAddrMax(t *testing.T) {
	ti := goodImage()
	ti.initrdAddrMax = 0x37ff_ffff // older kernels: below 896 MiB
	mem := newMem(t, 2<<30)
	e, err := Load(mem, Config{Kernel: bytes.NewReader(fakeBzImage(ti)), Initrd: bytes.NewReader(make([]byte, 5000))})
	if err != nil {
		t.Fatal(err)
	}
	if end := e.InitrdAddr + 5000; end > 0x3800_0000 || 0x3800_0000-end >= 2*memory.PageSize {
		t.Errorf("initrd at %#x, want its end just below 0x38000000", e.InitrdAddr)
	}
}

// countingImage counts the bytes read from an Image.
type countingImage struct {
	Image
	reads, bytes int64
}

func (c *countingImage) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.Image.ReadAt(p, off)
	c.reads++
	c.bytes += int64(n)
	return n, err
}

// TestLoadReadsFilesStraightIntoGuestMemory pins how the VMM loads the
// guest image's kernel and initrd (P7, P8): from files, each byte is read
// once, into guest memory where it goes, and nothing of their size passes
// through the Go heap (a read into a buffer and a copy would allocate it,
// and the heap would keep the pages long after).
func TestLoadReadsFilesStraightIntoGuestMemory(t *testing.T) {
	ti := goodImage()
	ti.kernelSize = 4 << 20
	ti.initSize = 8 << 20
	dir := t.TempDir()
	kernelBytes := fakeBzImage(ti)
	initrdBytes := make([]byte, 16<<20+123)
	for i := range initrdBytes {
		initrdBytes[i] = byte(i*31 + i>>12)
	}
	open := func(name string, b []byte) *countingImage {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return &countingImage{Image: io.NewSectionReader(f, 0, int64(len(b)))}
	}
	kernel, initrd := open("vmlinuz", kernelBytes), open("initrd", initrdBytes)
	mem := newMem(t, 128<<20)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := Load(mem, Config{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0"})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if heap := after.TotalAlloc - before.TotalAlloc; heap > 256<<10 {
		t.Errorf("Load allocated %d bytes on the Go heap for a %d-byte kernel and a %d-byte initrd, want < 256 KiB", heap, len(kernelBytes), len(initrdBytes))
	}
	if initrd.bytes != int64(len(initrdBytes)) {
		t.Errorf("read %d bytes of the %d-byte initrd, want each once", initrd.bytes, len(initrdBytes))
	}
	code := int64(ti.kernelSize)
	if header := kernel.bytes - code; header < 0 || header > 2*zeroPageSize {
		t.Errorf("read %d bytes of the kernel for its %d-byte code, want it once and at most the header's page besides", kernel.bytes, code)
	}
	if got, _ := mem.Slice(e.InitrdAddr, uint64(len(initrdBytes))); !bytes.Equal(got, initrdBytes) {
		t.Error("initrd contents differ in guest memory")
	}
	if got, _ := mem.Slice(KernelAddr, uint64(code)); !bytes.Equal(got, kernelBytes[len(kernelBytes)-int(code):]) {
		t.Error("kernel code differs in guest memory")
	}
}

// TestLoadShortImage: a file shorter than its size (cut while booting)
// is an error that says what was short, not a guest with zeroes.
func TestLoadShortImage(t *testing.T) {
	kernel := fakeBzImage(goodImage())
	short := io.NewSectionReader(bytes.NewReader(make([]byte, 100)), 0, 5000) // claims 5000 bytes
	_, err := Load(newMem(t, 64<<20), Config{Kernel: bytes.NewReader(kernel), Initrd: short})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Load = %v, want io.ErrUnexpectedEOF", err)
	}
	t.Log(err)
}
