package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// DefaultCacheDir is the compilation cache shared by every shim on the
// machine, with the hook host (wasmhost.DefaultCacheDir is the same path).
const DefaultCacheDir = "/var/cache/husk/wasm"

// cache is wazero's file-backed compilation cache as the shim uses it. Only
// the shim writes it — through the runner binary run on the host with
// -precompile, so that the Wasm handler links no wazero — at container create (or
// exec); it hands the container a read-only view holding just its modules'
// entries (see view), so no container can write what another one runs.
type cache struct {
	dir string
	// compile compiles wasm into dir (the runner's Precompile).
	compile func(ctx context.Context, dir string, wasm []byte) error
	// wazeroVersion tells the version of wazero the runner has, which
	// names wazero's subdirectory of dir.
	wazeroVersion func() (string, error)

	mu sync.Mutex // serialises compiles: one at a time per shim is plenty
	// keyed is false once an entry was found missing right after wazero
	// wrote it: the key computation (entryKey) no longer matches wazero's,
	// so the runner compiles every module itself.
	keyed atomic.Bool
}

func newCache(dir, runnerPath string) *cache {
	c := &cache{
		dir: dir,
		compile: func(ctx context.Context, dir string, wasm []byte) error {
			return precompile(ctx, runnerPath, dir, wasm)
		},
		wazeroVersion: sync.OnceValues(func() (string, error) { return stampedWazeroVersion(dir, runnerPath, binaryWazeroVersion) }),
	}
	c.keyed.Store(true)
	return c
}

// precompile runs the runner on the host to compile wasm into dir.
func precompile(ctx context.Context, runnerPath, dir string, wasm []byte) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, runnerPath, "-"+runnerapi.FlagPrecompile, "-"+runnerapi.FlagCache, dir)
	cmd.Stdin, cmd.Stderr = bytes.NewReader(wasm), &stderr
	// The shim's orphan reaper must leave this child to cmd.Wait.
	own := reaper.Spawn()
	err := cmd.Start()
	if err != nil {
		own(0)
	} else {
		own(cmd.Process.Pid)
		err = cmd.Wait()
		reaper.Release(cmd.Process.Pid)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == runnerapi.BadModule {
		return fmt.Errorf("%s: %w", strings.TrimSpace(stderr.String()), errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("compiling with %s: %v: %s", runnerPath, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// binaryWazeroVersion reads the version of wazero linked into the binary at
// path from its build information, without running it.
func binaryWazeroVersion(path string) (string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the build information of %s: %w", path, err)
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/tetratelabs/wazero" && d.Version != "" && d.Version != "(devel)" {
			return d.Version, nil
		}
	}
	return "dev", nil
}

// versionStamp is the file in the cache directory that records the
// runner's wazero version with the runner file's identity.
const versionStamp = "runner-wazero-version"

// stampedWazeroVersion is the wazero version of the runner at path: read
// from the stamp in dir when the stamp names this runner file (device,
// inode, size, modification and change times), otherwise from the binary
// with read (and stamped, best effort). Every shim asks this once, and
// without a grouping annotation every container has a shim of its own:
// parsing the 5 MiB runner's build information took about 1 ms of each
// Wasm task's start here, the stamp a stat and a small read. The cache
// directory is the shim's (root's, 0700), and what the stamp says is
// checked to be a version before it names a directory.
func stampedWazeroVersion(dir, path string, read func(string) (string, error)) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return read(path)
	}
	id := fmt.Sprintf("%d:%d:%d:%d.%09d:%d.%09d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	stamp := filepath.Join(dir, versionStamp)
	if b, err := os.ReadFile(stamp); err == nil && len(b) <= 256 {
		if got, v, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok && got == id && isVersion(v) {
			return v, nil
		}
	}
	v, err := read(path)
	if err != nil || !isVersion(v) {
		return v, err
	}
	if f, err := os.CreateTemp(dir, "."+versionStamp+"-*"); err == nil {
		_, werr := f.WriteString(id + " " + v + "\n")
		if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), stamp) != nil {
			_ = os.Remove(f.Name())
		}
	}
	return v, nil
}

// isVersion tells whether v can be a module version in a directory name:
// 1 to 64 letters, digits, '.', '-' and '+' ("v1.12.0", "dev").
func isVersion(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+') {
			return false
		}
	}
	return true
}

// verDir is wazero's subdirectory of the cache: wazero-<version>-<arch>-<os>
// (wazero's cache.go, ensuresFileCache).
func (c *cache) verDir() (string, error) {
	v, err := c.wazeroVersion()
	if err != nil {
		return "", err
	}
	return filepath.Join(c.dir, "wazero-"+v+"-"+goruntime.GOARCH+"-"+goruntime.GOOS), nil
}

// entryKey computes the name of wazero's cache entry for wasm, compiled
// with the runner's configuration: sha256(sha256(wasm ‖ ensureTermination)
// ‖ "WAZEVO" ‖ cpu features), as wazero 1.12 does (wasm.Module.AssignModuleID,
// wazevo.fileCacheKey, platform.CpuFeatures). It lets a create find a
// compiled module with one hash and one stat instead of wazero decoding,
// validating and loading it. Ensure checks the computation whenever the
// runner compiles, and stops using it if it is ever wrong.
func entryKey(wasm []byte) string {
	h := sha256.New()
	h.Write(wasm)
	if runnerapi.EnsureTermination {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	id := h.Sum(nil)
	k := sha256.New()
	k.Write(id)
	k.Write([]byte("WAZEVO"))
	var feat [8]byte
	binary.LittleEndian.PutUint64(feat[:], cpuFeatures())
	k.Write(feat[:])
	return hex.EncodeToString(k.Sum(nil))
}

// cpuFeatures mirrors wazero's platform.CpuFeatures.Raw().
func cpuFeatures() uint64 {
	var f uint64
	switch goruntime.GOARCH {
	case "amd64":
		if cpu.X86.HasSSE41 {
			f |= 1
		}
		if cpu.X86.HasBMI1 {
			f |= 2
		}
		if cpu.X86.HasBMI1 && cpu.X86.HasBMI2 && cpu.X86.HasPOPCNT {
			f |= 4
		}
	case "arm64":
		if cpu.ARM64.HasATOMICS {
			f |= 1
		}
	}
	return f
}

// Ensure makes sure wasm is compiled in the cache and returns the path of
// its entry, or "" if the entry cannot be named (the runner then compiles
// the module itself). A module wazero rejects is an invalid argument whose
// message is wazero's.
func (c *cache) Ensure(ctx context.Context, name string, wasm []byte) (string, error) {
	verDir, err := c.verDir()
	if err != nil {
		return "", err
	}
	entry := filepath.Join(verDir, entryKey(wasm))
	if c.keyed.Load() {
		if _, err := os.Stat(entry); err == nil {
			return entry, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return "", fmt.Errorf("wasm compilation cache: %w", err)
	}
	if err := c.compile(ctx, c.dir, wasm); err != nil {
		return "", fmt.Errorf("module %s: %w", name, err)
	}
	if _, err := os.Stat(entry); err != nil {
		if c.keyed.Swap(false) {
			logging.L(ctx).Warn("wasm cache entries are not where husk computes them; the runner will compile modules itself", "want", entry)
		}
		return "", nil
	}
	return entry, nil
}

// view is one container's read-only window on the cache: a directory laid
// out like the cache (wazero's version directory) holding hard links to the
// entries of the modules the container runs, bind-mounted read-only into
// the container. New entries (for an exec) appear in it at once.
type view struct {
	dir string
}

// viewDir is where the view of container id of the sandbox whose state is
// in sandboxDir (<state>/<namespace>/<sandbox>) lives.
func (c *cache) viewDir(sandboxDir, id string) string {
	return filepath.Join(c.dir, "containers", filepath.Base(filepath.Dir(sandboxDir)), filepath.Base(sandboxDir), id)
}

func (c *cache) newView(sandboxDir, id string) (*view, error) {
	verDir, err := c.verDir()
	if err != nil {
		return nil, err
	}
	v := &view{dir: c.viewDir(sandboxDir, id)}
	// 0755: the container's user, whoever it is, reads its own view; the
	// cache's 0700 root directory keeps everyone else on the host out.
	// Another container's removeView may remove a parent it found empty
	// while this one is made: try again then.
	for try := 0; try < 10; try++ {
		if err = os.MkdirAll(filepath.Join(v.dir, filepath.Base(verDir)), 0o755); !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("wasm cache view: %w", err)
	}
	for _, d := range []string{v.dir, filepath.Join(v.dir, filepath.Base(verDir))} {
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, fmt.Errorf("wasm cache view: %w", err)
		}
	}
	return v, nil
}

// add puts entry into the view: a hard link (a copy across filesystems),
// readable by the container's user.
func (v *view) add(entry string) error {
	dst := filepath.Join(v.dir, filepath.Base(filepath.Dir(entry)), filepath.Base(entry))
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.Chmod(entry, 0o644); err != nil {
		return fmt.Errorf("wasm cache entry: %w", err)
	}
	err := os.Link(entry, dst)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		err = copyFile(entry, dst)
	}
	if err != nil {
		return fmt.Errorf("wasm cache view: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// removeView removes a container's view and the sandbox and namespace
// directories it leaves empty.
func (c *cache) removeView(sandboxDir, id string) error {
	dir := c.viewDir(sandboxDir, id)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing wasm cache view: %w", err)
	}
	// Best effort: a sibling's view keeps its parent.
	sb := filepath.Dir(dir)
	if os.Remove(sb) == nil {
		_ = os.Remove(filepath.Dir(sb))
	}
	return nil
}
