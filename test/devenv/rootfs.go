package devenv

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// busyboxPath is the host's static busybox (Debian's busybox-static). It is
// copied into the rootfs at the same path, which is also where every applet
// symlink points.
const busyboxPath = "/bin/busybox"

// entry is one file of the busybox rootfs. The rootfs is described once, in
// memory, so that the directory (BusyboxRootfs) and the image layer
// (BusyboxImage) hold exactly the same tree and the layer does not depend on
// the state of any directory on disk.
type entry struct {
	path   string      // relative to the rootfs, no leading slash
	mode   fs.FileMode // type bits (dir, symlink) and permissions
	target string      // symlink target
	data   []byte      // regular file content
}

// busyboxEntries returns the busybox rootfs, sorted by path (so parents come
// before their children).
func busyboxEntries() ([]entry, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("devenv: %w (apt-get install busybox-static)", err)
	}
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("devenv: %s --list-full: %w", busyboxPath, err)
	}
	ents := map[string]entry{}
	addDir := func(p string, perm fs.FileMode) {
		for d := p; d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := ents[d]; !ok {
				ents[d] = entry{path: d, mode: fs.ModeDir | 0o755}
			}
		}
		ents[p] = entry{path: p, mode: fs.ModeDir | perm}
	}
	for _, d := range []string{"proc", "sys", "dev", "etc"} {
		addDir(d, 0o755)
	}
	addDir("root", 0o700)
	addDir("tmp", fs.ModeSticky|0o777)
	self := strings.TrimPrefix(busyboxPath, "/")
	addDir(path.Dir(self), 0o755)
	ents[self] = entry{path: self, mode: 0o755, data: bin}
	for _, applet := range strings.Fields(string(out)) {
		applet = path.Clean(strings.TrimPrefix(applet, "/"))
		if applet == self || strings.HasPrefix(applet, "..") {
			continue
		}
		if d := path.Dir(applet); d != "." {
			if _, ok := ents[d]; !ok {
				addDir(d, 0o755)
			}
		}
		ents[applet] = entry{path: applet, mode: fs.ModeSymlink | 0o777, target: busyboxPath}
	}
	ents["etc/passwd"] = entry{path: "etc/passwd", mode: 0o644, data: []byte(
		"root:x:0:0:root:/root:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")}
	ents["etc/group"] = entry{path: "etc/group", mode: 0o644, data: []byte(
		"root:x:0:\n" +
			"nobody:x:65534:\n")}

	list := make([]entry, 0, len(ents))
	for _, e := range ents {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].path < list[j].path })
	return list, nil
}

// BusyboxRootfs writes a busybox root filesystem into dir (created if
// needed): /bin/busybox from the host, a symlink to it for every applet
// (`busybox --list-full`), proc sys dev tmp etc root, and /etc/passwd and
// /etc/group with root and nobody (65534). It is usable with
// `ctr run --rootfs dir`.
func BusyboxRootfs(dir string) error {
	ents, err := busyboxEntries()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		switch {
		case e.mode.IsDir():
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("devenv: %w", err)
			}
			// Chmod, not Mkdir's mode: the umask must not clear tmp's 1777.
			if err := os.Chmod(p, e.mode.Perm()|e.mode&fs.ModeSticky); err != nil {
				return fmt.Errorf("devenv: %w", err)
			}
		case e.mode&fs.ModeSymlink != 0:
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("devenv: %w", err)
			}
			if err := os.Symlink(e.target, p); err != nil {
				return fmt.Errorf("devenv: %w", err)
			}
		default:
			if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, e.data) {
				if err := os.Chmod(p, e.mode.Perm()); err != nil {
					return fmt.Errorf("devenv: %w", err)
				}
				continue
			}
			if err := writeFileAtomic(p, e.data, e.mode.Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to p and renames it
// over p, so a running copy of p (busybox) is never rewritten in place.
func writeFileAtomic(p string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("devenv: write %s: %w", p, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("devenv: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devenv: write %s: %w", p, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	return nil
}
