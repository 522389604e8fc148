package cpio

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestArchiveUnpacks checks the writer against GNU cpio when it is
// installed (the kernel's unpacker reads the same format).
func TestArchiveUnpacks(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("needs GNU cpio to check the archive: apt-get install cpio")
	}
	a := NewArchive()
	a.File("bin/hello", 0o755, []byte("#!/bin/sh\necho hi\n"))
	a.File("etc/odd-length", 0o644, []byte("12345"))
	a.Symlink("bin/sh", "hello")
	a.Dir("proc")
	dir := t.TempDir()
	cmd := exec.Command(cpio, "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(a.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	for name, want := range map[string]string{"bin/hello": "#!/bin/sh\necho hi\n", "etc/odd-length": "12345"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/hello")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/hello mode: %v, %v", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "hello" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "proc")); err != nil || !fi.IsDir() {
		t.Errorf("proc: %v", err)
	}
}

func TestArchiveLayout(t *testing.T) {
	a := NewArchive()
	a.File("a/b/c", 0o600, []byte("x"))
	b := a.Bytes()
	// Parents first, then the file, then the trailer; every header is
	// 4-byte aligned.
	want := []string{"a\x00", "a/b\x00", "a/b/c\x00", "TRAILER!!!\x00"}
	off := 0
	for _, name := range want {
		i := bytes.Index(b[off:], []byte(name))
		if i < 0 {
			t.Fatalf("%q missing after offset %d", name, off)
		}
		hdr := off + i - 110
		if hdr%4 != 0 || string(b[hdr:hdr+6]) != "070701" {
			t.Errorf("%q: header at %d", name, hdr)
		}
		off += i + len(name)
	}
	if len(b)%4 != 0 {
		t.Errorf("archive length %d", len(b))
	}
}
