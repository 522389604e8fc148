package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/huskrt/husk/vmm/x86"
)

// fakeSeg is a program header of a synthetic vmlinux.
type fakeSeg struct {
	typ         uint32
	paddr       uint64
	data        []byte
	memsz       uint64 // 0: len(data)
	offOverride uint64 // non-zero: p_offset as written
	fileszExtra uint64 // added to p_filesz as written
}

// fakeELF builds an ELF64 executable with the given segments; data follows
// the program headers.
func fakeELF(entry uint64, machine uint16, segs []fakeSeg) []byte {
	le := binary.LittleEndian
	const ehsize, phsize = 64, 56
	h := make([]byte, ehsize+phsize*len(segs))
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le.PutUint16(h[16:], 2)    // ET_EXEC
	le.PutUint16(h[18:], machine)
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[24:], entry)
	le.PutUint64(h[32:], ehsize) // phoff
	le.PutUint16(h[52:], ehsize)
	le.PutUint16(h[54:], phsize)
	le.PutUint16(h[56:], uint16(len(segs)))
	var body []byte
	for i, s := range segs {
		off := uint64(len(h) + len(body))
		body = append(body, s.data...)
		if s.offOverride != 0 {
			off = s.offOverride
		}
		memsz := s.memsz
		if memsz == 0 {
			memsz = uint64(len(s.data))
		}
		p := h[ehsize+phsize*i:]
		le.PutUint32(p[0:], s.typ)
		le.PutUint32(p[4:], 5) // R+X
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], 0xffff_ffff_8000_0000+s.paddr)
		le.PutUint64(p[24:], s.paddr)
		le.PutUint64(p[32:], uint64(len(s.data))+s.fileszExtra)
		le.PutUint64(p[40:], memsz)
		le.PutUint64(p[48:], 0x1000)
	}
	return append(h, body...)
}

// xenNote is the PVH entry note as Linux emits it (an 8-byte descriptor).
func xenNote(entry uint64) []byte {
	le := binary.LittleEndian
	b := make([]byte, 12, 24)
	le.PutUint32(b[0:], 4) // "Xen\0"
	le.PutUint32(b[4:], 8)
	le.PutUint32(b[8:], xenNotePhys32)
	b = append(b, "Xen\x00"...)
	return le.AppendUint64(b, entry)
}

func TestLoadELF(t *testing.T) {
	const paddr = 0x100_0000
	code := bytes.Repeat([]byte{0xf4}, 0x300)
	otherNote := []byte{4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 'G', 'N', 'U', 0, 1, 2, 3, 4}
	tests := []struct {
		name  string
		segs  []fakeSeg
		mode  Mode
		entry uint64
	}{
		{"64-bit entry without a PVH note", []fakeSeg{{typ: 1, paddr: paddr, data: code, memsz: 0x2000}}, Mode64, paddr + 0x10},
		{"PVH note", []fakeSeg{{typ: 1, paddr: paddr, data: code, memsz: 0x2000}, {typ: 4, data: append(otherNote, xenNote(paddr+0x80)...)}}, ModePVH, paddr + 0x80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newMem(t, 64<<20)
			// Dirty the bss so the loader must clear it.
			mem.WriteAt(bytes.Repeat([]byte{0xaa}, 0x100), paddr+0x1f00)
			e, err := Load(mem, Config{Kernel: bytes.NewReader(fakeELF(paddr+0x10, 62, tt.segs)), Initrd: bytes.NewReader([]byte("initrd")), Cmdline: "x=y", RSDP: 0xe0000})
			if err != nil {
				t.Fatal(err)
			}
			if e.Mode != tt.mode || e.Addr != tt.entry {
				t.Fatalf("entry %+v, want %v at %#x", e, tt.mode, tt.entry)
			}
			if got, _ := mem.Slice(paddr, 0x300); !bytes.Equal(got, code) {
				t.Error("segment not loaded at its physical address")
			}
			if got, _ := mem.Slice(paddr+0x1f00, 0x100); !bytes.Equal(got, make([]byte, 0x100)) {
				t.Error("bss not cleared")
			}
			le := binary.LittleEndian
			if tt.mode == ModePVH {
				si, _ := mem.Slice(PVHStartInfo, 56)
				if le.Uint32(si) != pvhMagic || le.Uint32(si[4:]) != 1 || le.Uint32(si[12:]) != 1 ||
					le.Uint64(si[24:]) != CmdlineAddr || le.Uint64(si[32:]) != 0xe0000 || le.Uint32(si[48:]) != 4 {
					t.Errorf("start info % x", si)
				}
				mod, _ := mem.Slice(le.Uint64(si[16:]), 16)
				if le.Uint64(mod) != e.InitrdAddr || le.Uint64(mod[8:]) != 6 {
					t.Errorf("module %#x +%d, want the initrd at %#x", le.Uint64(mod), le.Uint64(mod[8:]), e.InitrdAddr)
				}
				return
			}
			zp, _ := mem.Slice(x86.ZeroPage, zeroPageSize)
			if le.Uint32(zp[hdrMagic:]) != magicValue || le.Uint32(zp[hdrKernelAlign:]) != vmlinuxAlignment || le.Uint32(zp[hdrRamdiskImage:]) != uint32(e.InitrdAddr) {
				t.Errorf("zero page header: magic %#x align %#x ramdisk %#x", le.Uint32(zp[hdrMagic:]), le.Uint32(zp[hdrKernelAlign:]), le.Uint32(zp[hdrRamdiskImage:]))
			}
		})
	}
}

func TestLoadELFRejects(t *testing.T) {
	const paddr = 0x100_0000
	data := make([]byte, 0x100)
	tests := []struct {
		name    string
		machine uint16
		segs    []fakeSeg
		want    error
	}{
		{"not x86-64", 3, []fakeSeg{{typ: 1, paddr: paddr, data: data}}, ErrNotELF},
		{"no loadable segment", 62, []fakeSeg{{typ: 4, data: data}}, ErrNotELF},
		{"file size over memory size", 62, []fakeSeg{{typ: 1, paddr: paddr, data: data, memsz: 0x10}}, ErrBadImage},
		{"segment past the end of the file", 62, []fakeSeg{{typ: 1, paddr: paddr, data: data, fileszExtra: 1 << 40, memsz: 1 << 41}}, ErrBadImage},
		{"segment offset wrapping", 62, []fakeSeg{{typ: 1, paddr: paddr, data: data, offOverride: ^uint64(0) - 8}}, ErrNotELF},
		{"segment beyond RAM", 62, []fakeSeg{{typ: 1, paddr: 1 << 40, data: data}}, ErrTooSmall},
		{"segment in the MMIO hole", 62, []fakeSeg{{typ: 1, paddr: 0xbfff_ff00, data: data, memsz: 0x200}}, ErrTooSmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(newMem(t, 64<<20), Config{Kernel: bytes.NewReader(fakeELF(paddr, tt.machine, tt.segs))})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load = %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
	if _, err := Load(newMem(t, 64<<20), Config{Kernel: bytes.NewReader([]byte("\x7fELF\x02\x01"))}); !errors.Is(err, ErrNotELF) {
		t.Errorf("truncated ELF: %v, want ErrNotELF", err)
	}
}

func TestPVHNoteParsingSurvivesGarbage(t *testing.T) {
	// Notes whose sizes run past the segment end must not be read.
	bad := []byte{0xff, 0xff, 0xff, 0x7f, 8, 0, 0, 0, 18, 0, 0, 0, 'X', 'e', 'n', 0}
	mem := newMem(t, 64<<20)
	e, err := Load(mem, Config{Kernel: bytes.NewReader(fakeELF(0x100_0000, 62, []fakeSeg{{typ: 1, paddr: 0x100_0000, data: make([]byte, 16)}, {typ: 4, data: bad}}))})
	if err != nil || e.Mode != Mode64 {
		t.Fatalf("Load = %+v, %v; want a 64-bit entry (note ignored)", e, err)
	}
}

// TestParseELFAgreesWithDebugELF: the loader's own ELF reader finds the
// entry and program headers debug/elf finds, and refuses what is not a
// well-formed table.
func TestParseELFAgreesWithDebugELF(t *testing.T) {
	img := fakeELF(0x100_0200, 62, []fakeSeg{
		{typ: 1, paddr: 0x100_0000, data: make([]byte, 300), memsz: 0x2000},
		{typ: 4, data: []byte("note")},
		{typ: 1, paddr: 0x200_0000, data: []byte{1, 2, 3}},
	})
	entry, progs, err := parseELF(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if entry != f.Entry || len(progs) != len(f.Progs) {
		t.Fatalf("entry %#x, %d headers; debug/elf: %#x, %d", entry, len(progs), f.Entry, len(f.Progs))
	}
	for i, p := range f.Progs {
		want := elfProg{Type: uint32(p.Type), Off: p.Off, Paddr: p.Paddr, Filesz: p.Filesz, Memsz: p.Memsz}
		if progs[i] != want {
			t.Errorf("header %d: %+v, debug/elf %+v", i, progs[i], want)
		}
	}
	le := binary.LittleEndian
	for _, tt := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"header entries of another size", func(b []byte) []byte { le.PutUint16(b[54:], 64); return b }},
		{"headers past the end", func(b []byte) []byte { le.PutUint64(b[32:], uint64(len(b))-8); return b }},
		{"too many headers", func(b []byte) []byte { le.PutUint16(b[56:], maxProgs+1); return b }},
		{"big-endian", func(b []byte) []byte { b[5] = 2; return b }},
		{"32-bit", func(b []byte) []byte { b[4] = 1; return b }},
		{"not an executable", func(b []byte) []byte { le.PutUint16(b[16:], 3); return b }},
		{"cut in the header", func(b []byte) []byte { return b[:40] }},
	} {
		b := tt.edit(append([]byte(nil), img...))
		if _, _, err := parseELF(bytes.NewReader(b)); !errors.Is(err, ErrNotELF) {
			t.Errorf("%s: %v, want ErrNotELF", tt.name, err)
		}
	}
}
