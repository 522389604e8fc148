package nested

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrMissing reports an asset the harness needs and cannot find; the
// message says how to get it. Tests skip on it.
var ErrMissing = errors.New("nested harness asset missing")

// Kernel is an unpacked Debian kernel package.
type Kernel struct {
	Vmlinuz string // boot/vmlinuz-*
	modules string // lib/modules/<version>/kernel
}

// FindKernel finds the kernel hack/nested-assets.sh cached under
// <repo>/.tools/kernel/cloud-amd64.
func FindKernel(repo string) (*Kernel, error) {
	dir := filepath.Join(repo, ".tools", "kernel", "cloud-amd64")
	vmlinuz, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "kernel"))
	if len(vmlinuz) != 1 || len(mods) != 1 {
		return nil, fmt.Errorf("%w: no kernel in %s: run make nested-assets", ErrMissing, dir)
	}
	return &Kernel{Vmlinuz: vmlinuz[0], modules: mods[0]}, nil
}

// Module returns the contents of the module named name (without .ko),
// found anywhere in the package's module tree.
func (k *Kernel) Module(name string) ([]byte, error) {
	var found string
	err := filepath.WalkDir(k.modules, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name+".ko" {
			found = p
			return fs.SkipAll
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if found == "" {
		return nil, fmt.Errorf("%w: module %s not in %s", ErrMissing, name, k.modules)
	}
	return os.ReadFile(found)
}

// RepoRoot returns the module root above dir (where go.mod is).
func RepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// StaticBusybox returns the path of a statically linked busybox
// (Debian's busybox-static installs one as /bin/busybox).
func StaticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no static busybox: apt-get install busybox-static (hack/install-tools.sh)", ErrMissing)
}

// QEMU returns the path of qemu-system-x86_64.
func QEMU() (string, error) {
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("%w: no qemu-system-x86_64: apt-get install qemu-system-x86 (hack/install-tools.sh)", ErrMissing)
	}
	return p, nil
}
