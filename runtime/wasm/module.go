package wasm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// magic starts every Wasm binary (core modules and components alike).
var magic = []byte("\x00asm")

// maxModuleSize bounds how much of a module file the shim reads.
const maxModuleSize = 1 << 30

// defaultPath is the PATH used to find args[0] when the spec's environment
// has none (the one runc's init uses too).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// splitFunc splits runwasi's "path#func" form of args[0]: the module and the
// export to run instead of _start ("" for _start).
func splitFunc(arg0 string) (file, fn string) {
	if i := strings.LastIndexByte(arg0, '#'); i > 0 && i < len(arg0)-1 {
		return arg0[:i], arg0[i+1:]
	}
	return arg0, ""
}

// lookup finds the program file of args[0] in the container's root, as the
// container's init would (a name without a slash is searched in the spec's
// PATH, a relative path starts at cwd) and opens it. root is a host path
// (the mounted rootfs, or /proc/<pid>/root); every lookup is resolved
// inside it by the kernel (openat2 RESOLVE_IN_ROOT), so "..", absolute
// paths and symlinks in the container's tree cannot lead out of it. It
// returns the file and its path in the container.
func lookup(root, file string, env []string, cwd string) (*os.File, string, error) {
	return lookupMounted(root, nil, file, env, cwd)
}

// bindRoot is a bind mount of the container, whose source the shim can
// read before the mount exists in the container.
type bindRoot struct{ dest, source string }

// bindRoots lists spec's bind mounts, longest destination first.
func bindRoots(mounts []specs.Mount) []bindRoot {
	var rs []bindRoot
	for _, m := range mounts {
		if m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
			rs = append(rs, bindRoot{dest: path.Clean(m.Destination), source: m.Source})
		}
	}
	slices.SortStableFunc(rs, func(a, b bindRoot) int { return len(b.dest) - len(a.dest) })
	return rs
}

// lookupMounted is lookup at create time, when the container's mounts do
// not exist yet: a path below a bind mount's destination is looked up in
// the mount's source instead (confined to it), so that a module in a
// volume is found too. (Other mounts, tmpfs say, cannot hold a module yet.)
func lookupMounted(root string, binds []bindRoot, file string, env []string, cwd string) (*os.File, string, error) {
	var candidates []string
	switch {
	case strings.HasPrefix(file, "/"):
		candidates = []string{file}
	case strings.Contains(file, "/"):
		if cwd == "" {
			cwd = "/"
		}
		candidates = []string{path.Join(cwd, file)}
	default:
		p, ok := envValue(env, "PATH")
		if !ok {
			p = defaultPath
		}
		for _, d := range strings.Split(p, ":") {
			if d == "" {
				d = "."
			}
			if !strings.HasPrefix(d, "/") {
				d = path.Join(cwd, d)
			}
			candidates = append(candidates, path.Join(d, file))
		}
	}
	var firstErr error
	for _, c := range candidates {
		base, rel := root, c
		for _, b := range binds {
			if r, ok := below(c, b.dest); ok {
				base, rel = b.source, r
				break
			}
		}
		f, err := openInRoot(base, rel)
		if err == nil {
			return f, c, nil
		}
		if firstErr == nil || !errors.Is(err, os.ErrNotExist) {
			firstErr = err
		}
	}
	if errors.Is(firstErr, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%s: not found in the container: %w", file, errdefs.ErrNotFound)
	}
	return nil, "", fmt.Errorf("%s: %w", file, firstErr)
}

// below reports whether p is dir or below it, and p relative to dir.
func below(p, dir string) (string, bool) {
	if dir == "/" {
		return p, true
	}
	if p == dir {
		return "/", true
	}
	if strings.HasPrefix(p, dir+"/") {
		return p[len(dir):], true
	}
	return "", false
}

// openInRoot opens name, a path in the container, below the host directory
// root, refusing anything but a regular file.
func openInRoot(root, name string) (*os.File, error) {
	dir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	return f, nil
}

// isWasm reports whether f starts with the Wasm magic; it reads from the
// start of f without moving its offset.
func isWasm(f *os.File) (bool, []byte, error) {
	head := make([]byte, 4)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, nil, err
	}
	return bytes.Equal(head[:n], magic), head[:n], nil
}

// readModule reads a whole module file, bounded.
func readModule(f *os.File) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, maxModuleSize+1), maxModuleSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxModuleSize {
		return nil, fmt.Errorf("module is larger than %d bytes: %w", maxModuleSize, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
