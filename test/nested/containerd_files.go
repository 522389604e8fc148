package nested

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/huskrt/husk/internal/cpio"
	"github.com/huskrt/husk/runtime/virt/builtin"
)

// ContainerdTools are the host binaries the containerd run copies into the
// outer initrd.
type ContainerdTools struct {
	Containerd, Ctr string // <repo>/.tools/bin, dynamically linked (cgo)
	MkfsErofs       string // Debian's erofs-utils, dynamically linked
}

// FindContainerdTools finds containerd and ctr in <repo>/.tools/bin
// (hack/install-tools.sh) and mkfs.erofs in PATH.
func FindContainerdTools(repo string) (*ContainerdTools, error) {
	bin := filepath.Join(repo, ".tools", "bin")
	t := &ContainerdTools{Containerd: filepath.Join(bin, "containerd"), Ctr: filepath.Join(bin, "ctr")}
	for _, p := range []string{t.Containerd, t.Ctr} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %s: run make tools", ErrMissing, p)
		}
	}
	p, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		return nil, fmt.Errorf("%w: no mkfs.erofs: apt-get install erofs-utils (make tools)", ErrMissing)
	}
	t.MkfsErofs = p
	return t, nil
}

// BuildShim builds containerd-shim-husk-v2 into out, and husk-vmm next to
// it, as the outer guest needs them: static (the outer initrd has no
// libseccomp), with cgo for libcontainer's nsenter and the seccomp tag, as
// husk-agent is built, and grpcnotrace, as make build builds it (husk-vmm
// with its own tags, as make build builds it).
func BuildShim(ctx context.Context, repo, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: needs the go command in PATH to build the static shim", ErrMissing)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "seccomp grpcnotrace netgo osusergo", "-trimpath",
		"-ldflags=-s -w -extldflags=-static", "-o", out, "./cmd/containerd-shim-husk-v2")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the static shim: %w\n%s", err, b)
	}
	// The VMM process's program goes next to the shim, as make install
	// puts it (runtime/virt/builtin runs it from there).
	cmd = exec.CommandContext(ctx, goBin, "build", "-tags", "seccomp husk_vmmchild netgo osusergo", "-trimpath",
		"-ldflags=-s -w -extldflags=-static", "-o", filepath.Join(filepath.Dir(out), vmmBinary), "./cmd/husk-vmm")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building husk-vmm: %w\n%s", err, b)
	}
	return nil
}

// vmmBinary is the VMM process's program, next to the shim.
const vmmBinary = builtin.VMMBinary

// addExecutable copies the executable src to dst in a, stripped of its
// debug information when strip is installed (containerd and ctr carry
// ~27 MB of DWARF the guest never reads), and, when it is dynamically
// linked, every shared library ldd lists for it at the same path, as
// addQEMU does for QEMU. The outer init exports LD_LIBRARY_PATH for them.
func addExecutable(a *cpio.Archive, src, dst string) error {
	b, err := stripped(src)
	if err != nil {
		return err
	}
	a.File(dst, 0o755, b)
	dynamic, err := isDynamic(src)
	if err != nil || !dynamic {
		return err
	}
	return addLibraries(a, src)
}

// stripped returns src's contents without debug sections, or as they are
// when strip is missing or fails (the binary still works, it is larger).
func stripped(src string) ([]byte, error) {
	if strip, err := exec.LookPath("strip"); err == nil {
		tmp, err := os.CreateTemp("", "husk-nested-strip-*")
		if err != nil {
			return nil, err
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if exec.Command(strip, "--strip-debug", "-o", tmp.Name(), src).Run() == nil {
			return os.ReadFile(tmp.Name())
		}
	}
	return os.ReadFile(src)
}

// isDynamic reports whether the ELF file at p asks for an interpreter.
func isDynamic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// addLibraries copies every shared library ldd lists for bin (the dynamic
// loader too) into a, at the path ldd names, contents followed through
// symlinks.
func addLibraries(a *cpio.Archive, bin string) error {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return fmt.Errorf("%w: ldd %s: %v", ErrMissing, bin, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		lib := f[len(f)-2] // "name => /path (addr)" or "/path (addr)"
		if !strings.HasPrefix(lib, "/") {
			continue // the vDSO
		}
		data, err := os.ReadFile(lib)
		if err != nil {
			return err
		}
		a.File(strings.TrimPrefix(lib, "/"), 0o755, data)
	}
	return sc.Err()
}
