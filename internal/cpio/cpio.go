// Package cpio writes initramfs archives: cpio in the "newc" format the
// Linux kernel unpacks at boot (Documentation/driver-api/early-userspace/
// buffer-format.rst). It writes only what an initramfs needs: regular
// files, directories, symbolic links and character devices, owned by root,
// uncompressed.
package cpio

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Archive is an initramfs being built. Parent directories are created as
// needed; adding a name twice keeps the last.
type Archive struct {
	entries map[string]entry
}

type entry struct {
	mode       uint32 // type and permission bits, as in the cpio header
	data       []byte // file contents or symlink target
	rdevMajor  uint32
	rdevMinor  uint32
	isExplicit bool
}

// cpio mode bits (stat.h).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
)

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: map[string]entry{}} }

func (a *Archive) add(name string, e entry) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := a.entries[dir]; !ok {
			a.entries[dir] = entry{mode: modeDir | 0o755}
		}
	}
	e.isExplicit = true
	a.entries[name] = e
}

// File adds a regular file.
func (a *Archive) File(name string, perm fs.FileMode, data []byte) {
	a.add(name, entry{mode: modeRegular | uint32(perm.Perm()), data: data})
}

// Dir adds a directory.
func (a *Archive) Dir(name string) { a.add(name, entry{mode: modeDir | 0o755}) }

// Symlink adds a symbolic link to target.
func (a *Archive) Symlink(name, target string) {
	a.add(name, entry{mode: modeSymlink | 0o777, data: []byte(target)})
}

// CharDevice adds a character device node.
func (a *Archive) CharDevice(name string, major, minor uint32) {
	a.add(name, entry{mode: modeChar | 0o600, rdevMajor: major, rdevMinor: minor})
}

// Bytes returns the archive, entries sorted so that every directory comes
// before what it holds, ending with the trailer.
func (a *Archive) Bytes() []byte {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names) // "a" < "a/b": parents first
	var b bytes.Buffer
	for i, n := range names {
		writeEntry(&b, uint32(i+1), n, a.entries[n])
	}
	writeEntry(&b, 0, "TRAILER!!!", entry{})
	return b.Bytes()
}

func writeEntry(b *bytes.Buffer, ino uint32, name string, e entry) {
	nlink := uint32(1)
	if e.mode&0o170000 == modeDir {
		nlink = 2
	}
	fmt.Fprintf(b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.rdevMajor, e.rdevMinor, len(name)+1, 0)
	b.WriteString(name)
	b.WriteByte(0)
	pad4(b)
	b.Write(e.data)
	pad4(b)
}

func pad4(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}
