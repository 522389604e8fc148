package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
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
	e, err := Load(mem, Config{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0 quiet", RSDP: 0xe0000})
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != Mode64 || e.Addr != KernelAddr+0x200 || e.Param != x86.ZeroPage {
		t.Errorf("entry %+v, want 64-bit at %#x with the zero page", e, KernelAddr+0x200)
	}
	img, _ := ParseBzImage(kernel)
	if got, _ := mem.Slice(KernelAddr, uint64(len(img.Kernel))); !bytes.Equal(got, img.Kernel) {
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
		{"not a kernel", 64 << 20, Config{Kernel: []byte("#!/bin/sh\n")}, ErrNotBzImage},
		{"command line too long", 64 << 20, Config{Kernel: kernel, Cmdline: string(bytes.Repeat([]byte("a"), 2048))}, nil},
		{"NUL in the command line", 64 << 20, Config{Kernel: kernel, Cmdline: "a\x00b"}, nil},
		{"initrd larger than RAM", 64 << 20, Config{Kernel: kernel, Initrd: make([]byte, 64<<20)}, ErrTooSmall},
		{"initrd over the decompressor", 23 << 20, Config{Kernel: kernel, Initrd: make([]byte, 4<<20)}, ErrTooSmall},
		{"RAM smaller than the kernel's init_size", 64 << 20, Config{Kernel: fakeBzImage(big), Initrd: []byte{1}}, ErrTooSmall},
		{"1 MiB of RAM", 1 << 20, Config{Kernel: kernel}, ErrTooSmall},
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
	e, err := Load(mem, Config{Kernel: fakeBzImage(ti), Initrd: make([]byte, 5000)})
	if err != nil {
		t.Fatal(err)
	}
	if end := e.InitrdAddr + 5000; end > 0x3800_0000 || 0x3800_0000-end >= 2*memory.PageSize {
		t.Errorf("initrd at %#x, want its end just below 0x38000000", e.InitrdAddr)
	}
}
