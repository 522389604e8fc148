package guestimage

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeModule returns a minimal ELF64 relocatable object whose only
// contents are a .modinfo section with the given key=value strings, which
// is all the builder reads of a module.
func fakeModule(t *testing.T, modinfo ...string) []byte {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(info))
	shoff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	put := func(v any) {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	put(elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_REL),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shoff,
		Ehsize:    ehsize,
		Shentsize: shentsize,
		Shnum:     3,
		Shstrndx:  2,
	})
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, shoff-uint64(b.Len())))
	put(elf.Section64{}) // section 0 is null
	put(elf.Section64{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC),
		Off: infoOff, Size: uint64(len(info)), Addralign: 1})
	put(elf.Section64{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1})
	return b.Bytes()
}

const fakeRelease = "6.0.0-99-test"

// fakeMod is a module of a fake kernel tree.
type fakeMod struct {
	path    string // under lib/modules/<release>/kernel
	depends string // the depends= value
	gzip    bool
}

// fakeTree writes an unpacked kernel package into a directory named
// <package>_<version> and returns it.
func fakeTree(t *testing.T, builtin []string, mods []fakeMod) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "linux-image-"+fakeRelease+"_6.0.1-1")
	modDir := filepath.Join(dir, "lib", "modules", fakeRelease)
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "boot", "vmlinuz-"+fakeRelease), []byte("not really a kernel"))
	write(filepath.Join(modDir, "modules.builtin"), []byte(strings.Join(builtin, "\n")+"\n"))
	for _, m := range mods {
		name, _ := moduleName(m.path)
		obj := fakeModule(t, "license=GPL", "depends="+m.depends, "name="+name)
		if m.gzip {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(obj)
			zw.Close()
			obj = z.Bytes()
		}
		write(filepath.Join(modDir, "kernel", m.path), obj)
	}
	return dir
}

// testTree is the fake kernel most tests use.
func testTree(t *testing.T) string {
	return fakeTree(t,
		[]string{"kernel/fs/ext4/ext4.ko", "kernel/lib/crc16.ko"},
		[]fakeMod{
			{path: "drivers/a.ko", depends: "b,c"},
			{path: "drivers/b.ko", depends: "c"},
			{path: "drivers/c.ko"},
			{path: "drivers/dash-mod.ko", depends: "c"},
			{path: "drivers/cyc1.ko", depends: "cyc2"},
			{path: "drivers/cyc2.ko", depends: "cyc1"},
			{path: "drivers/needs-ghost.ko", depends: "ghost"},
			{path: "drivers/zipped.ko.gz", depends: "c", gzip: true},
			{path: "drivers/squeezed.ko.xz"},
			{path: "one/twin.ko"},
			{path: "two/twin.ko"},
		})
}

// newcEntry is one member of a cpio archive, as readNewc parses it.
type newcEntry struct {
	mode         uint32
	data         []byte
	major, minor uint32
}

// readNewc parses a newc cpio archive, independently of internal/cpio.
func readNewc(t *testing.T, b []byte) map[string]newcEntry {
	t.Helper()
	out := map[string]newcEntry{}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; ; {
		if len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header at %d: %v", off, err)
			}
			return uint32(v)
		}
		mode, size, major, minor, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		data := align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = newcEntry{mode: mode, data: b[data : data+size], major: major, minor: minor}
		off = align(data + size)
	}
}
