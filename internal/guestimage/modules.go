package guestimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// AgentModules are the kernel features husk-agent needs, by module name;
// each is either built into the kernel or loaded from the initramfs with
// its dependencies:
//
//   - virtio_mmio: the transport of the built-in VMM's devices (matched by
//     ACPI id LNRO0005, or virtio_mmio.device= on the command line);
//   - virtio_pci: the transport of the qemu backend's devices (q35; its
//     disks are hot-plugged into PCIe root ports, which the kernel drives
//     itself);
//   - virtio_blk, virtio_net: container disks and the pod network;
//   - vmw_vsock_virtio_transport (with vsock and
//     vmw_vsock_virtio_transport_common): the agent's channel to the host;
//   - virtio-rng: entropy from the host (hw_random);
//   - virtio_console: virtio-serial ports, the agent's channel to a host
//     without vsock (a QEMU without /dev/vhost-vsock; agent/serial);
//   - erofs, overlay, ext4: image layers, the container rootfs, volumes.
var AgentModules = []string{
	"virtio_mmio",
	"virtio_pci",
	"virtio_blk",
	"virtio_net",
	"vsock",
	"vmw_vsock_virtio_transport_common",
	"vmw_vsock_virtio_transport",
	"virtio-rng",
	"virtio_console",
	"erofs",
	"overlay",
	"ext4",
}

// Module is a loadable module of the kernel tree.
type Module struct {
	Name string // as the kernel names it: dashes become underscores
	Path string // the file in the package, perhaps compressed
}

// FileName is the module's file name in the image.
func (m Module) FileName() string { return m.Name + ".ko" }

// Tree is an unpacked kernel package: one kernel release and its modules.
type Tree struct {
	Dir     string // the package directory
	Release string // <release> of lib/modules/<release>
	Vmlinuz string // boot/vmlinuz-<release>

	modules map[string][]string // module name -> files; read-only after OpenTree
	builtin map[string]bool     // module names built into the kernel
}

// OpenTree indexes the kernel package unpacked in dir.
func OpenTree(dir string) (*Tree, error) {
	rels, err := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "modules.builtin"))
	if err != nil {
		return nil, err
	}
	if len(rels) != 1 {
		return nil, fmt.Errorf("%s: want one lib/modules/<release>/modules.builtin, found %d: not an unpacked Debian kernel package: %w",
			dir, len(rels), errdefs.ErrNotFound)
	}
	modDir := filepath.Dir(rels[0])
	t := &Tree{
		Dir:     dir,
		Release: filepath.Base(modDir),
		modules: map[string][]string{},
		builtin: map[string]bool{},
	}
	t.Vmlinuz = filepath.Join(dir, "boot", "vmlinuz-"+t.Release)
	if _, err := os.Stat(t.Vmlinuz); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", t.Release, err)
	}
	b, err := os.ReadFile(rels[0])
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Fields(string(b)) {
		if name, ok := moduleName(line); ok {
			t.builtin[name] = true
		}
	}
	err = filepath.WalkDir(filepath.Join(modDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if name, ok := moduleName(p); ok {
			t.modules[name] = append(t.modules[name], p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel %s: modules: %w", t.Release, err)
	}
	return t, nil
}

// moduleExts are the module file endings kmod knows.
var moduleExts = []string{".ko", ".ko.gz", ".ko.xz", ".ko.zst"}

// moduleName returns the module name of a module file's path, as the kernel
// spells it (KBUILD_MODNAME: dashes become underscores).
func moduleName(p string) (string, bool) {
	base := filepath.Base(p)
	for _, ext := range moduleExts {
		if name, ok := strings.CutSuffix(base, ext); ok {
			return canonical(name), true
		}
	}
	return "", false
}

// canonical spells a module name the kernel's way: it treats '-' and '_'
// alike and reports underscores.
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Builtin reports whether the module name is built into the kernel.
func (t *Tree) Builtin(name string) bool { return t.builtin[canonical(name)] }

// lookup returns the loadable module named name.
func (t *Tree) lookup(name string) (Module, error) {
	files := t.modules[canonical(name)]
	switch len(files) {
	case 0:
		return Module{}, fmt.Errorf("module %q: not built into kernel %s nor one of its modules: %w",
			name, t.Release, errdefs.ErrNotFound)
	case 1:
		return Module{Name: canonical(name), Path: files[0]}, nil
	default:
		return Module{}, fmt.Errorf("module %q: %d files in kernel %s (%s): ambiguous",
			name, len(files), t.Release, strings.Join(files, ", "))
	}
}

// Resolve returns the loadable modules the wanted ones need, dependencies
// first, each once. A wanted name built into the kernel needs nothing; a
// name that is neither built in nor a module is an error naming it.
func (t *Tree) Resolve(wanted []string) ([]Module, error) {
	var order []Module
	state := map[string]int{} // 1: being visited, 2: done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		name = canonical(name)
		switch {
		case t.builtin[name] || state[name] == 2:
			return nil
		case state[name] == 1:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(path, " -> "), name)
		}
		m, err := t.lookup(name)
		if err != nil {
			if len(path) > 0 {
				return fmt.Errorf("%s (needed by %s): %w", name, path[len(path)-1], err)
			}
			return err
		}
		data, err := readModule(m.Path)
		if err != nil {
			return err
		}
		deps, err := dependsOf(data)
		if err != nil {
			return fmt.Errorf("module %s: %w", m.Path, err)
		}
		state[name] = 1
		for _, d := range deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, m)
		return nil
	}
	for _, w := range wanted {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns a module file's ELF object, decompressed. Debian's
// bookworm kernels ship plain .ko files; gzip is undone with the standard
// library; xz and zstd (later kernels) are refused rather than mis-read.
func readModule(p string) ([]byte, error) {
	switch {
	case strings.HasSuffix(p, ".ko"):
		return os.ReadFile(p)
	case strings.HasSuffix(p, ".ko.gz"):
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", p, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", p, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("module %s: compressed with %s, which the image builder cannot decompress (only .ko and .ko.gz): %w",
			p, filepath.Ext(p), errdefs.ErrNotImplemented)
	}
}

// dependsOf returns the "depends=" list of a module's .modinfo section:
// the modules whose symbols it uses, as modpost recorded them.
func dependsOf(obj []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(info))
	sc.Split(splitNUL)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "depends="); ok {
			if v == "" {
				return nil, nil
			}
			return strings.Split(v, ","), nil
		}
	}
	return nil, sc.Err()
}

// splitNUL is a bufio.SplitFunc for NUL-separated strings (.modinfo pads
// between them with more NULs: empty tokens are returned and ignored).
func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
