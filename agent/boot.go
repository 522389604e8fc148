package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
)

// guestMount is one filesystem the guest needs before anything runs.
type guestMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// guestMounts are mounted in order by Boot. /dev is the kernel's devtmpfs;
// cgroup v2 is the only hierarchy (the engine supports both; the guest
// picks the one without a v1 past).
var guestMounts = []guestMount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate"},
}

// Boot does what the guest's init owes the rest before the agent listens:
// the kernel modules of the image (virtio, vsock, erofs, overlay:
// LoadOrderFile), a root that is not the initramfs, the filesystems every
// container needs, and the cgroup controllers delegated to containers. It
// is for PID 1 of a VM only.
func Boot(ctx context.Context) error {
	n, err := loadModules(api.LoadOrderFile, api.ModuleDir)
	if err != nil {
		return err
	}
	logging.L(ctx).Info("kernel modules loaded", "count", n)
	if err := leaveInitramfs(); err != nil {
		return err
	}
	for _, m := range guestMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err)
		}
	}
	_ = os.Remove("/dev/ptmx")
	if err := os.Symlink("pts/ptmx", "/dev/ptmx"); err != nil {
		return err
	}
	for _, l := range [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}} {
		_ = os.Symlink(l[0], l[1])
	}
	// Every controller the kernel offers, for the containers' cgroups.
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return err
	}
	var enable []string
	for _, c := range strings.Fields(string(b)) {
		enable = append(enable, "+"+c)
	}
	if len(enable) > 0 {
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte(strings.Join(enable, " ")), 0); err != nil {
			return fmt.Errorf("enabling cgroup controllers %v: %w", enable, err)
		}
	}
	return nil
}

// loadModules loads the modules listed in list, in order, from dir. A
// module already loaded (built in, or loaded twice) is not an error.
func loadModules(list, dir string) (int, error) {
	f, err := os.Open(list)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // an image without modules: everything is built in
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		if strings.ContainsRune(name, '/') {
			return n, fmt.Errorf("%s: module %q is not a file name", list, name)
		}
		m, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return n, err
		}
		err = unix.FinitModule(int(m.Fd()), "", 0)
		m.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return n, fmt.Errorf("loading module %s: %w", name, err)
		}
		n++
	}
	return n, sc.Err()
}

// leaveInitramfs moves the guest's root from the initramfs onto a tmpfs of
// its own, as switch_root does: pivot_root(2), which the engine enters
// every container with, refuses to move the initramfs ("rootfs"), which
// can never be unmounted. The initramfs's files (the agent's binary and
// the modules, already loaded) are removed first to give their memory
// back; the running agent keeps its binary open.
func leaveInitramfs() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return err
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		return nil // booted from a real root already
	}
	const newRoot = "/newroot"
	entries, err := os.ReadDir("/")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "dev" || e.Name() == strings.TrimPrefix(newRoot, "/") {
			continue // /dev/console may be all the agent's stdio has
		}
		_ = os.RemoveAll("/" + e.Name())
	}
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mounting the guest's root: %w", err)
	}
	if err := os.Mkdir(newRoot+"/dev", 0o755); err != nil {
		return err
	}
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving the guest's root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	return unix.Chdir("/")
}
