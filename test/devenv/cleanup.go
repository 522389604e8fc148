package devenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/huskrt/husk/internal/logging"
	"golang.org/x/sys/unix"
)

// removeTasks deletes every task and container in every namespace, so that
// the shims shut down (and unmount their rootfs) while containerd still runs.
// Errors are logged, not returned: whatever survives is dealt with by
// killShims and unmountUnder.
func (c *Containerd) removeTasks(ctx context.Context) {
	log := logging.L(ctx)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	out, _, err := c.Ctr(ctx, "namespaces", "ls", "-q")
	if err != nil {
		log.Warn("devenv: list namespaces", "error", err)
		return
	}
	for _, ns := range strings.Fields(out) {
		tasks, _, err := c.ctrIn(ctx, ns, "tasks", "ls", "-q")
		if err != nil {
			log.Warn("devenv: list tasks", "namespace", ns, "error", err)
		}
		for _, id := range strings.Fields(tasks) {
			if _, _, err := c.ctrIn(ctx, ns, "tasks", "rm", "-f", id); err != nil {
				log.Warn("devenv: remove task", "namespace", ns, "id", id, "error", err)
			}
		}
		ctrs, _, err := c.ctrIn(ctx, ns, "containers", "ls", "-q")
		if err != nil {
			log.Warn("devenv: list containers", "namespace", ns, "error", err)
		}
		if ids := strings.Fields(ctrs); len(ids) > 0 {
			if _, _, err := c.ctrIn(ctx, ns, append([]string{"containers", "rm"}, ids...)...); err != nil {
				log.Warn("devenv: remove containers", "namespace", ns, "error", err)
			}
		}
	}
}

// killShims SIGKILLs, by pid, the shims whose command line names this
// containerd's address (`-address <Dir>/c.sock`, unique to this bench).
// Shims outlive containerd by design, so Stop must end them itself.
func (c *Containerd) killShims(ctx context.Context) {
	pids := shimPids(c.Address())
	for _, pid := range pids {
		logging.L(ctx).Warn("devenv: killing leftover shim", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// They are not our children; wait for whoever reaps them.
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// shimPids lists processes started with "-address <address>".
func shimPids(address string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if (args[i] == "-address" || args[i] == "--address") && args[i+1] == address {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// unmountUnder detaches every mount at or below dir, deepest first, until
// none is left.
func unmountUnder(dir string) error {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	for pass := 0; ; pass++ {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		if pass == 5 {
			return fmt.Errorf("devenv: still mounted after 5 passes: %s", strings.Join(mounts, ", "))
		}
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("devenv: unmount %s: %w", m, err)
			}
		}
	}
}

// mountsUnder returns the mount points at or below dir in this process's
// mount namespace, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeOctal(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("devenv: read mountinfo: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// unescapeOctal undoes mountinfo's \ooo escaping of space, tab, newline and
// backslash.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// alive reports whether pid exists and is not a zombie (an init that does not
// reap, as in some sandboxes, leaves dead shims as zombies forever).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
