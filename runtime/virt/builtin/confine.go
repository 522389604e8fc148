package builtin

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// confine shuts the VMM process in, once its VM is built (/dev/kvm open,
// guest memory mapped, kernel loaded, the vsock socket listening) and
// before the guest runs. The process is already in mount and PID
// namespaces of its own (Start's clone flags) and in the pod's cgroup (the
// parent put it there before sending the config). After confine:
//
//   - its root is dir, bind-mounted read-only, nosuid, nodev, noexec, and
//     the host's mounts are gone from its namespace (pivot_root, then the
//     old root detached): the only files it can reach are dir's sockets;
//   - it holds only the descriptors a running VM needs (checkFDs);
//   - no thread has any capability, bounding set included;
//   - no_new_privs is set and the seccomp allow-list is in force on every
//     thread.
func confine(dir string) error {
	// Nothing done below may reach the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// A procfs of the process's own PID namespace: its threads are named
	// there by the ids tgkill takes.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting a procfs: %w", err)
	}
	if err := checkFDs(); err != nil {
		return err
	}
	tasks, err := os.Open("/proc/self/task")
	if err != nil {
		return err
	}
	defer tasks.Close()
	if err := pivot(dir); err != nil {
		return err
	}
	if err := dropCapabilities(tasks); err != nil {
		return fmt.Errorf("dropping capabilities: %w", err)
	}
	tasks.Close() // the last way out of the new root
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return loadSeccomp(unix.Getpid())
}

// pivot makes dir the process's root, read-only, and detaches the rest.
func pivot(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s: %w", dir, err)
	}
	const ro = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("", dir, "", ro, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", dir, err)
	}
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	// pivot_root(".", "."): the old root ends up mounted over the new one,
	// where a lazy unmount takes it away (runc does the same).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", dir, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}

// Device numbers of the character devices the VMM may hold.
var (
	devNull = unix.Mkdev(1, 3)
	devKVM  = unix.Mkdev(10, 232)
	devTun  = unix.Mkdev(10, 200) // a tap's queue, opened by the shim
)

// fdKind says what a descriptor is, from its /proc/self/fd link and stat.
func fdKind(fd int) (string, error) {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(link, "socket:"):
		return "socket", nil
	case strings.HasPrefix(link, "pipe:"):
		return "pipe", nil
	case strings.HasPrefix(link, "anon_inode:"):
		return link, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR {
		switch st.Rdev {
		case devNull:
			return "/dev/null", nil
		case devKVM:
			return "/dev/kvm", nil
		case devTun:
			return "/dev/net/tun", nil
		}
	}
	return link, nil
}

// runningFD says whether a descriptor of this kind belongs in a running
// VMM: fd 0 (/dev/null), 1 and 2 (console and log pipes), its sockets
// (control channel, hybrid vsock), /dev/kvm, the KVM VM and vCPUs, its
// NICs' tap queues (/dev/net/tun, attached to a tap by the shim: the
// process has no capability to make or attach one itself), and eventfds
// and the poller's epoll.
func runningFD(fd int, kind string) bool {
	switch {
	case fd == 0:
		return kind == "/dev/null"
	case fd == 1 || fd == 2:
		return kind == "pipe"
	}
	switch kind {
	case "socket", "/dev/kvm", "/dev/net/tun", "anon_inode:kvm-vm", "anon_inode:[eventfd]", "anon_inode:[eventpoll]":
		return true
	}
	return strings.HasPrefix(kind, "anon_inode:kvm-vcpu:")
}

// openFDs lists the process's descriptors.
func openFDs() ([]int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	self := int(d.Fd())
	d.Close()
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != self {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}

// checkFDs fails if the process holds a descriptor a running VMM does not
// need. It closes none: each is some object's, which would close it again
// later, perhaps under a number reused by then.
func checkFDs() error {
	fds, err := openFDs()
	if err != nil {
		return err
	}
	var extra []string
	for _, fd := range fds {
		kind, err := fdKind(fd)
		if err != nil {
			continue // closed meanwhile
		}
		if !runningFD(fd, kind) {
			extra = append(extra, fmt.Sprintf("%d (%s)", fd, kind))
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("descriptors a running VMM does not need: %s", strings.Join(extra, ", "))
	}
	return nil
}

// closeInheritedFDs closes, first thing in the VMM process, every
// descriptor it may have inherited beyond stdio and the control channel
// (the shim's C libraries could leave one without O_CLOEXEC). The Go
// runtime's own (its poller's epoll and eventfd) stay; the child's
// environment keeps the runtime from holding any other (GODEBUG, see
// childEnv).
func closeInheritedFDs() error {
	fds, err := openFDs()
	if err != nil {
		return err
	}
	for _, fd := range fds {
		if fd <= controlFD {
			continue
		}
		kind, err := fdKind(fd)
		if err != nil {
			continue
		}
		if kind != "anon_inode:[eventfd]" && kind != "anon_inode:[eventpoll]" {
			unix.Close(fd)
		}
	}
	return nil
}
