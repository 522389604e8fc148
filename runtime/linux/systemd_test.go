package linux

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/test/devenv"
)

// insideSystemd is set in the environment of the test binary that
// TestSystemdCgroupDriver runs in systemd's namespaces.
const insideSystemd = "HUSK_TEST_INSIDE_SYSTEMD"

// cgroupMount is a cgroup hierarchy mounted under /sys/fs/cgroup.
type cgroupMount struct {
	dir, fstype, opts string // opts: the superblock's, less rw/ro
}

// cgroupMounts lists the cgroup hierarchies of this mount namespace.
func cgroupMounts(t *testing.T) []cgroupMount {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || !strings.HasPrefix(tail[0], "cgroup") || !strings.HasPrefix(fields[4], "/sys/fs/cgroup") {
			continue
		}
		var opts []string
		for _, o := range strings.Split(tail[2], ",") {
			if o != "rw" && o != "ro" {
				opts = append(opts, o)
			}
		}
		ms = append(ms, cgroupMount{dir: fields[4], fstype: tail[0], opts: strings.Join(opts, ",")})
	}
	return ms
}

// bootSystemd starts systemd as PID 1 of new PID, mount and cgroup
// namespaces, in a cgroup of its own in every hierarchy (the root of its
// cgroup namespace, so it manages nothing of the host's), booting an empty
// target; it returns systemd's pid once systemd answers. The test's
// cleanup kills it and removes its cgroups.
func bootSystemd(t *testing.T, systemdBin string) int {
	t.Helper()
	name := fmt.Sprintf("husk-systemd-test-%d", os.Getpid())
	ms := cgroupMounts(t)
	if len(ms) == 0 {
		t.Skip("no cgroup hierarchy under /sys/fs/cgroup")
	}
	var join, mounts strings.Builder
	for _, m := range ms {
		d := filepath.Join(m.dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeCgroupTree(t, d) })
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} { // a v1 cpuset admits no task until set
			if b, err := os.ReadFile(filepath.Join(m.dir, f)); err == nil && m.fstype == "cgroup" {
				if err := os.WriteFile(filepath.Join(d, f), b, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		fmt.Fprintf(&join, "echo $$ > %s/cgroup.procs\n", d)
		opts := ""
		if m.opts != "" {
			opts = "-o " + m.opts
		}
		fmt.Fprintf(&mounts, "mkdir -p %s && mount -t %s %s %s %s\n", m.dir, m.fstype, opts, m.fstype, m.dir)
	}
	tmpfs := ""
	if ms[0].dir != "/sys/fs/cgroup" {
		tmpfs = "mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup\n"
	}
	// In the namespaces: private mounts; the cgroup hierarchies mounted
	// again, so that they show the namespace's root; an empty /run; an
	// empty target to boot; systemd in container mode.
	boot := "set -e\nmount --make-rprivate /\n" + tmpfs + mounts.String() +
		"mount -t tmpfs -o mode=755 tmpfs /run\nmkdir -p /run/systemd/system\n" +
		"printf '[Unit]\\nDescription=husk test\\nDefaultDependencies=no\\n' > /run/systemd/system/husk-test.target\n" +
		"mount -t proc proc /proc\nexport container=husk-test\n" +
		"exec " + systemdBin + " --unit=husk-test.target\n"
	bootFile := filepath.Join(t.TempDir(), "boot.sh")
	if err := os.WriteFile(bootFile, []byte(boot), 0o600); err != nil {
		t.Fatal(err)
	}
	script := "set -e\n" + join.String() + "exec unshare --pid --mount --cgroup --fork sh " + bootFile + "\n"
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var pid int
	t.Cleanup(func() {
		if pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL) // PID 1 of its namespace: all in it go
		}
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("systemd's namespaces could not be set up:\n%s", out.String())
		default:
		}
		if pid == 0 {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			continue
		}
		st, _ := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-m", "-C", "-p", "--", "systemctl", "is-system-running").Output()
		if s := strings.TrimSpace(string(st)); s == "running" || s == "degraded" {
			return pid
		}
	}
	t.Fatalf("systemd did not come up in 30 s:\n%s", out.String())
	return 0
}

// removeCgroupTree removes cgroup dir and the cgroups below it, deepest
// first, retrying while the processes that were in them are reaped.
func removeCgroupTree(t *testing.T, dir string) {
	for range 50 {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("cgroup %s is left", dir)
}

// TestSystemdCgroupDriver runs husk's Linux handler with the systemd
// cgroup driver (kubeadm's default) against a real systemd: Debian's,
// booted for the test as PID 1 of namespaces of its own. The checks run in
// TestSystemdCgroupDriverInside, a run of this test binary in systemd's
// namespaces, where its private socket is.
func TestSystemdCgroupDriver(t *testing.T) {
	if os.Getenv(insideSystemd) != "" {
		t.Skip("already inside")
	}
	if os.Geteuid() != 0 {
		t.Skip("booting systemd in namespaces needs root")
	}
	systemdBin := "/lib/systemd/systemd"
	if _, err := os.Stat(systemdBin); err != nil {
		t.Skip("systemd is not installed (apt-get install systemd)")
	}
	for _, tool := range []string{"unshare", "nsenter", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	pid := bootSystemd(t, systemdBin)
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-m", "-C", "-p", "--",
		os.Args[0], "-test.run=^TestSystemdCgroupDriverInside$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), insideSystemd+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside systemd's namespaces:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestSystemdCgroupDriverInside")) {
		t.Fatalf("the checks inside systemd's namespaces failed: %v", err)
	}
}

// TestSystemdCgroupDriverInside: a container whose cgroupsPath is
// systemd's slice:prefix:name (what the CRI writes under the systemd
// driver) gets a transient scope under its pod's slice, with its limits,
// as under runc; the pod's slice is where PodPath says; deleting the
// container stops the scope.
func TestSystemdCgroupDriverInside(t *testing.T) {
	if os.Getenv(insideSystemd) == "" {
		t.Skip("run by TestSystemdCgroupDriver in systemd's namespaces")
	}
	ctx := context.Background()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := devenv.BusyboxRootfs(rootfs); err != nil {
		t.Skipf("no busybox root filesystem: %v", err)
	}
	const id = "sd1"
	const slice = "kubepods-burstable-pod1234.slice"
	spec := specconv.Example()
	spec.Root = &specs.Root{Path: rootfs}
	spec.Process.Args = []string{"/bin/sh", "-c", "exit 0"}
	spec.Process.Terminal = false
	spec.Linux.CgroupsPath = slice + ":cri-containerd:" + id
	limit := int64(64 << 20)
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	cfg := config.Default()
	cfg.Linux.SystemdCgroup = true
	req := &handler.CreateRequest{ID: id, Namespace: "ns", Bundle: dir, SandboxID: id,
		StateDir: filepath.Join(dir, "state"), Spec: spec, Config: &cfg}

	c, err := New().Create(ctx, req)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	deleted := false
	defer func() {
		if !deleted {
			_ = c.Delete(ctx)
		}
	}()
	podPath := "/kubepods.slice/kubepods-burstable.slice/" + slice
	scope := "cri-containerd-" + id + ".scope"
	want := podPath + "/" + scope
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.Init().Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cg), ":"+want+"\n") {
		t.Errorf("the init's cgroups are not %s:\n%s", want, cg)
	}
	show := func(prop string) string {
		out, _ := exec.Command("systemctl", "show", "-p", prop, "--value", scope).Output()
		return strings.TrimSpace(string(out))
	}
	if s := show("ActiveState"); s != "active" {
		t.Errorf("systemd says %s is %q, want active", scope, s)
	}
	if s := show("Slice"); s != slice {
		t.Errorf("systemd puts %s in %q, want %s", scope, s, slice)
	}
	if got := memoryLimit(t, want); got != limit {
		t.Errorf("memory limit %d, want %d", got, limit)
	}
	if got := cgroups.PodPath(spec.Linux.CgroupsPath); got != podPath {
		t.Errorf("PodPath = %q, want %q", got, podPath)
	}
	// The pod's slice takes husk's sizing and, with sandbox_cgroup_only, a
	// shim (here a process of the test's) in a leaf of its own, and gives
	// it back.
	pids := int64(1000)
	if err := cgroups.SizePod(podPath, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pids}}); err != nil {
		t.Errorf("sizing the pod's slice: %v", err)
	}
	shim := exec.Command("sleep", "60")
	if err := shim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shim.Process.Kill(); _ = shim.Wait() }()
	leaf, err := cgroups.MoveShim(podPath, shim.Process.Pid)
	if err != nil {
		t.Errorf("moving a shim into the pod's slice: %v", err)
	} else {
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", shim.Process.Pid))
		if !strings.Contains(string(cg), ":"+podPath+"/husk-shim\n") {
			t.Errorf("the shim's cgroups are not %s/husk-shim:\n%s", podPath, cg)
		}
		if err := cgroups.ReleaseShim(leaf, shim.Process.Pid); err != nil {
			t.Errorf("releasing the shim: %v", err)
		}
	}

	if err := c.Init().Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	select {
	case <-c.Init().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the container did not exit")
	}
	if err := c.Init().Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	deleted = true
	if err := c.Delete(ctx); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if s := show("ActiveState"); s == "active" {
		t.Errorf("%s is still active after the delete", scope)
	}
}

// memoryLimit reads the memory limit of cgroup path, on cgroup v1 or v2.
func memoryLimit(t *testing.T, path string) int64 {
	t.Helper()
	for _, f := range []string{"/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes", "/sys/fs/cgroup" + path + "/memory.max", "/sys/fs/cgroup/unified" + path + "/memory.max"} {
		if b, err := os.ReadFile(f); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", f, b)
			}
			return n
		}
	}
	t.Fatalf("no memory limit file for %s", path)
	return 0
}
