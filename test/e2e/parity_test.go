package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/test/devenv"
)

// The parity suite runs the same probe under runc (the baseline) and under
// husk and requires the same output: husk's promise is that a Linux
// container behaves exactly as under io.containerd.runc.v2.

// parityProbe prints, section by section, what a container can observe of
// its own setup. It is one `sh -c` script for busybox's ash. It prints only
// what is the same from one run to the next on the same host; the few
// run-specific values left are rewritten by normalize.
const parityProbe = `
echo "== id"; id
echo "== hostname"; hostname
echo "== status"
grep -E '^(Uid|Gid|Groups|Umask|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters|Speculation_Store_Bypass|Cpus_allowed_list|Mems_allowed_list):' /proc/self/status
echo "== umask"; umask
echo "== env"; env | sort
echo "== pwd"; pwd
echo "== ulimit"; ulimit -a
echo "== limits"; cat /proc/self/limits
echo "== oom_score_adj"; cat /proc/self/oom_score_adj
echo "== lsm"; cat /proc/self/attr/current 2>&1; echo
echo "== uid_map"; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups 2>&1
# Pid numbers other than 1 are not compared: the runtime's Go init runs in
# the container's pid namespace before exec, and every thread it starts
# takes a pid (the shims give it different GOMAXPROCS values).
echo "== pid"; if [ $$ = 1 ]; then echo "self is pid 1"; else echo "self is not pid 1"; fi
tr '\0' ' ' </proc/1/cmdline; echo
echo "== mounts"; cat /proc/self/mounts
# root, mount point, options and optional fields (propagation); mount ids
# and device numbers change from run to run.
echo "== mountinfo"
awk '{ o = ""; for (i = 7; $i != "-"; i++) o = o " " $i; print $4, $5, $6 o, "-", $(i+1), $(i+2) }' /proc/self/mountinfo
echo "== cgroup"; cat /proc/self/cgroup
echo "== cgroup limits"
for f in \
	/sys/fs/cgroup/memory/memory.limit_in_bytes \
	/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes \
	/sys/fs/cgroup/memory/memory.soft_limit_in_bytes \
	/sys/fs/cgroup/memory/memory.swappiness \
	/sys/fs/cgroup/cpu/cpu.cfs_quota_us \
	/sys/fs/cgroup/cpu/cpu.cfs_period_us \
	/sys/fs/cgroup/cpu/cpu.shares \
	/sys/fs/cgroup/cpuset/cpuset.cpus \
	/sys/fs/cgroup/cpuset/cpuset.mems \
	/sys/fs/cgroup/pids/pids.max \
	/sys/fs/cgroup/memory.max \
	/sys/fs/cgroup/memory.swap.max \
	/sys/fs/cgroup/memory.high \
	/sys/fs/cgroup/cpu.max \
	/sys/fs/cgroup/cpu.weight \
	/sys/fs/cgroup/cpuset.cpus \
	/sys/fs/cgroup/pids.max \
	/sys/fs/cgroup/cgroup.controllers; do
	if [ -r "$f" ]; then echo "$f: $(cat "$f" 2>&1)"; fi
done
echo "== devices cgroup"
if [ -r /sys/fs/cgroup/devices/devices.list ]; then cat /sys/fs/cgroup/devices/devices.list; fi
echo "== rootfs write"
if f=$(mktemp /.parity.XXXXXX 2>/dev/null); then rm -f "$f"; echo rw-ok; else echo ro-denied; fi
if f=$(mktemp /tmp/.parity.XXXXXX 2>/dev/null); then rm -f "$f"; echo tmp-rw-ok; else echo tmp-ro-denied; fi
echo "== masked"
for p in /proc/acpi /proc/asound /proc/interrupts /proc/kcore /proc/keys /proc/latency_stats \
	/proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi \
	/sys/firmware /sys/devices/virtual/powercap; do
	if [ -d "$p" ]; then
		echo "$p: dir entries=$(ls -A "$p" 2>&1 | wc -l)"
	elif [ -e "$p" ]; then
		echo "$p: file bytes=$(head -c 1 "$p" 2>/dev/null | wc -c) err=$(head -c 1 "$p" 2>&1 >/dev/null)"
	else
		echo "$p: absent"
	fi
done
echo "== read-only paths"
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger /sys; do
	if [ -w "$p" ]; then echo "$p: writable"; else echo "$p: not writable"; fi
done
h=$(hostname)
if (echo "$h" >/proc/sys/kernel/hostname) 2>/dev/null; then echo "write /proc/sys/kernel/hostname: ok"; else echo "write /proc/sys/kernel/hostname: denied"; fi
echo "== dev"
find /dev | sort | while read -r f; do stat -c '%N %F %t:%T %a %u:%g' "$f"; done
echo "== root dirs"
stat -c '%n %F %a %u:%g' / /tmp /root /proc /sys /dev /etc /etc/passwd
echo "== net"; ip -o link 2>&1; ip -o addr 2>&1
echo "== ps"; ps -o user,group,nice,comm
`

// parityCase is one `ctr run` configuration compared under both runtimes.
type parityCase struct {
	name  string
	flags []string
	// rootfs runs the unpacked busybox directory (`ctr run --rootfs`)
	// instead of the image.
	rootfs bool
	// known describes a difference husk is known to have in this case. The
	// case then skips, with the diff in its log, when it sees a difference,
	// and fails when it sees none, so that the note goes with the bug.
	known string
}

// cgroupMount makes the container's cgroups visible at /sys/fs/cgroup, as
// CRI does (ctr's default spec has no cgroup mount), so that the probe can
// read its limits.
const cgroupMount = "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev"

// TestParityRun runs the probe as the init process of containers configured
// by each case, under runc and under husk, and requires the same output.
func TestParityRun(t *testing.T) {
	runcBaseline(t)
	bindSrc := t.TempDir()
	if err := os.WriteFile(filepath.Join(bindSrc, "file"), []byte("bind\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []parityCase{
		{name: "default"},
		{name: "seccomp", flags: []string{"--seccomp"}},
		{name: "read-only", flags: []string{"--read-only"}},
		{name: "user", flags: []string{"--user", "65534:65534"}},
		{name: "cwd-env", flags: []string{"--cwd", "/tmp", "--env", "FOO=bar", "--env", "PATH=/bin"}},
		{name: "cgroup-mount", flags: []string{"--mount", cgroupMount}},
		{name: "limits", flags: []string{
			"--mount", cgroupMount,
			"--memory-limit", "67108864", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
		}},
		{name: "cpu-quota", flags: []string{"--mount", cgroupMount, "--cpu-quota", "20000", "--cpu-period", "50000"}},
		{name: "caps-rlimit-hostname", flags: []string{
			"--cap-add", "CAP_SYS_ADMIN", "--cap-drop", "CAP_NET_RAW",
			"--rlimit-nofile", "1024:2048", "--hostname", "parity", "--allow-new-privs",
		}},
		{name: "bind-mount", flags: []string{"--mount", "type=bind,src=" + bindSrc + ",dst=/mnt,options=rbind:ro"}},
		{name: "userns", flags: []string{"--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"}},
		{name: "privileged", flags: []string{"--privileged"}},
		// pivot_root and MS_MOVE+chroot look the same from inside;
		// TestParityExec/no-pivot compares the libcontainer configs.
		{name: "no-pivot", flags: []string{"--no-pivot"}},
		{name: "rootfs", rootfs: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, errs := map[string]string{}, map[string]string{}
			for _, rt := range []string{runc, husk} {
				id := parityID(t, rt)
				cleanupContainer(t, id)
				args := append(runArgs(t, rt, "--rm"), c.flags...)
				ref := devenv.BusyboxRef
				if c.rootfs {
					args = append(args, "--rootfs")
					ref = rootfsDir
				}
				args = append(args, ref, id, "/bin/sh", "-c", parityProbe)
				t0 := time.Now()
				out, stderr, err := bench.Ctr(testCtx(t), args...)
				if err != nil {
					errs[rt] = normalize(strings.TrimSpace(stderr), id)
					t.Logf("%s: failed in %s: %s", shortRuntime(rt), time.Since(t0).Round(time.Millisecond), errs[rt])
					continue
				}
				t.Logf("%s: %d lines in %s", shortRuntime(rt), strings.Count(out, "\n"), time.Since(t0).Round(time.Millisecond))
				outs[rt] = normalize(out, id)
				saveProbe(t, rt, outs[rt])
			}
			switch {
			case errs[runc] != "":
				// Nothing to compare the output with; husk must refuse the
				// container as runc does.
				t.Logf("runc refuses this container here: only the refusals are compared")
				requireSameRefusal(t, errs[runc], errs[husk])
			case errs[husk] != "":
				t.Errorf("husk failed where runc ran the probe: %s", errs[husk])
			default:
				c.requireSame(t, outs[runc], outs[husk])
			}
		})
	}
}

// saveProbe writes a normalised probe output to $HUSK_PARITY_OUT, if set,
// as <test>.<runtime>, for reading or diffing at leisure.
func saveProbe(t *testing.T, rt, out string) {
	dir := os.Getenv("HUSK_PARITY_OUT")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"."+shortRuntime(rt))
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// requireSameRefusal fails t unless husk refused a container that runc
// refused, with the same report from the container's init. The init's
// report (libcontainer's code in both) starts at initReport; what the shims
// put in front of it differs and is only logged.
func requireSameRefusal(t *testing.T, runcErr, huskErr string) {
	t.Helper()
	if huskErr == "" {
		t.Errorf("husk ran a container runc refuses (%s)", runcErr)
		return
	}
	i := strings.Index(runcErr, initReport)
	if i < 0 {
		t.Logf("runc's error has no %q; only the refusal is compared", initReport)
		return
	}
	if !strings.Contains(huskErr, runcErr[i:]) {
		t.Errorf("husk's error does not end in runc's report %q:\n%s", runcErr[i:], huskErr)
	}
}

// initReport starts libcontainer's report of a container init that failed.
const initReport = "unable to start container process"

// TestParityExec starts a sleeping container under runc and under husk for
// each case and compares the libcontainer configuration each runtime made
// of the spec, the init as the host sees it, the probe run as an exec
// process, and the init's exit status after SIGKILL.
func TestParityExec(t *testing.T) {
	runcBaseline(t)
	cases := []parityCase{
		{name: "default"},
		{name: "seccomp-user", flags: []string{"--seccomp", "--user", "65534:65534"}},
		{name: "read-only", flags: []string{"--read-only"}},
		{name: "privileged", flags: []string{"--privileged"}},
		{name: "limits", flags: []string{"--memory-limit", "67108864", "--cpus", "0.5", "--cpuset-cpus", "0"}},
		{name: "no-pivot", flags: []string{"--no-pivot"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs := map[string]string{}
			for _, rt := range []string{runc, husk} {
				id := parityID(t, rt)
				cleanupContainer(t, id)
				pidFile := filepath.Join(t.TempDir(), "pid")
				args := append(runArgs(t, rt, "-d", "--pid-file", pidFile), c.flags...)
				ctr(t, append(args, devenv.BusyboxRef, id, "sleep", "600")...)
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatal(err)
				}
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil {
					t.Fatalf("pid file: %v", err)
				}
				var sb strings.Builder
				sb.WriteString(libcontainerState(t, rt, id))
				sb.WriteString(hostView(t, pid))
				sb.WriteString(ctrProbe(t, "task", "exec", "--exec-id", "probe", id, "/bin/sh", "-c", parityProbe))
				fmt.Fprintf(&sb, "== init exit after SIGKILL\n%d\n", killAndReap(t, id))
				outs[rt] = normalize(sb.String(), id)
				saveProbe(t, rt, outs[rt])
			}
			c.requireSame(t, outs[runc], outs[husk])
		})
	}
}

// libcontainerState returns the part of libcontainer's state.json for
// container id under runtime rt that says how the runtime set the
// container up: the configuration it converted the OCI spec into, whether
// it is rootless, and its cgroup paths. The rest of the state (pids, start
// and creation times, stdio pipe inodes, /proc/<pid>/ns paths) is per run.
// Both runtimes run the same libcontainer version (see runcBaseline), so
// the two must be the same but for the container id.
func libcontainerState(t *testing.T, rt, id string) string {
	t.Helper()
	var dir string
	switch rt {
	case runc:
		// containerd-shim-runc-v2 runs runc with --root
		// /run/containerd/runc/<namespace> unless the runtime options say
		// otherwise, and ctr passes none.
		dir = filepath.Join("/run/containerd/runc", bench.Namespace)
	case husk:
		// The shim inherits the test's environment through containerd, so it
		// loads the same husk configuration; linux.StateRoot puts the
		// handler's containers under <state_dir>/<namespace>/linux.
		cfg, err := config.Load(config.Path(""))
		if err != nil {
			t.Fatalf("husk configuration: %v", err)
		}
		// A plain container is its own sandbox: <state>/<ns>/<id>/linux/<id>.
		dir = filepath.Join(cfg.Runtime.StateDir, bench.Namespace, id, "linux")
	}
	data, err := os.ReadFile(filepath.Join(dir, id, "state.json"))
	if err != nil {
		t.Fatalf("%s state: %v", shortRuntime(rt), err)
	}
	var state map[string]any
	if err := json.Unmarshal(data, &state); err != nil {
		t.Fatalf("%s state: %v", shortRuntime(rt), err)
	}
	keep := map[string]any{}
	for _, k := range []string{"config", "rootless", "cgroup_paths"} {
		keep[k] = state[k]
	}
	out, err := json.MarshalIndent(keep, "", "  ") // map keys come out sorted
	if err != nil {
		t.Fatal(err)
	}
	return "== libcontainer state\n" + string(out) + "\n"
}

// TestParityExitStatus compares the exit status and output of scripts ending
// in different ways. Signals sent to pid 1 from inside its own pid
// namespace meet the kernel's init protection: what runc shows is the
// expectation, nothing is assumed.
func TestParityExitStatus(t *testing.T) {
	runcBaseline(t)
	scripts := []struct{ name, script string }{
		{"exit-0", "exit 0"},
		{"exit-42", "exit 42"},
		{"exit-300", "exit 300"},
		{"exec-false", "exec false"},
		{"self-kill", "kill -KILL $$; echo survived"},
		{"self-term", "kill -TERM $$; echo survived"},
		{"trapped-term", "trap 'exit 7' TERM; kill -TERM $$; sleep 1; echo untrapped"},
		{"child-killed", `sh -c 'kill -KILL $$'; exit $?`},
		{"stderr", "echo out; echo err >&2; exit 3"},
	}
	for _, s := range scripts {
		t.Run(s.name, func(t *testing.T) {
			got := map[string]string{}
			for _, rt := range []string{runc, husk} {
				id := parityID(t, rt)
				cleanupContainer(t, id)
				args := append(runArgs(t, rt, "--rm"), devenv.BusyboxRef, id, "/bin/sh", "-c", s.script)
				out, stderr, err := bench.Ctr(testCtx(t), args...)
				got[rt] = fmt.Sprintf("exit=%d stdout=%q stderr=%q", exitCode(err), out, stderr)
				t.Logf("%s: %s", shortRuntime(rt), got[rt])
			}
			if got[runc] != got[husk] {
				t.Errorf("husk differs from runc:\nrunc: %s\nhusk: %s", got[runc], got[husk])
			}
		})
	}
}

// TestParityMissingBinary runs a program that does not exist: both runtimes
// must refuse it, with the same report, and husk's error must name it.
func TestParityMissingBinary(t *testing.T) {
	runcBaseline(t)
	errs := map[string]string{}
	for _, rt := range []string{runc, husk} {
		id := parityID(t, rt)
		cleanupContainer(t, id)
		errs[rt] = normalize(strings.TrimSpace(ctrErr(t, append(runArgs(t, rt, "--rm"), devenv.BusyboxRef, id, "/nope")...)), id)
		t.Logf("%s error: %s", shortRuntime(rt), errs[rt])
	}
	if !strings.Contains(errs[husk], "/nope") {
		t.Errorf("husk's error does not name /nope: %s", errs[husk])
	}
	requireSameRefusal(t, errs[runc], errs[husk])
}

// TestParityLineDiff checks the diff the suite reports mismatches with.
func TestParityLineDiff(t *testing.T) {
	a := "== one\na\nb\nc\nd\ne\nf\n== two\ng\n"
	b := "== one\na\nB\nc\nd\ne\nf\n== two\ng\nh\n"
	want := "@@ == one\n" +
		"  == one\n  a\n- b\n+ B\n  c\n  d\n" +
		"@@ == two\n" +
		"  == two\n  g\n+ h\n"
	if got := lineDiff(a, b); got != want {
		t.Errorf("lineDiff:\n%s\nwant:\n%s", got, want)
	}
	if got := lineDiff(a, a); got != "" {
		t.Errorf("lineDiff of equal texts = %q, want empty", got)
	}
}

// baseline is the runc the suite compares husk with.
var baseline struct {
	once  sync.Once
	flags []string // `ctr run` flags that select it
	skip  string   // why there is none
}

// runcBaseline returns the `ctr run` flags that make io.containerd.runc.v2
// use the baseline runc, skipping t if there is none.
//
// The baseline is runc of the release whose libcontainer husk embeds
// (go.mod): against another release the suite would mostly measure what
// changed in runc between the two (mount options of masked paths, error
// wording, ...), not husk. hack/install-tools.sh builds it into .tools/bin,
// where containerd finds it first; it is also named with --runc-binary so
// that the runc whose version was checked is the one that runs.
func runcBaseline(t *testing.T) []string {
	t.Helper()
	needBench(t)
	baseline.once.Do(func() {
		path, desc, err := findBaseline()
		if err != nil {
			baseline.skip = err.Error()
			return
		}
		baseline.flags = []string{"--runc-binary", path}
		t.Logf("baseline: %s", desc)
	})
	if baseline.skip != "" {
		t.Skip(baseline.skip)
	}
	return baseline.flags
}

func findBaseline() (path, desc string, err error) {
	root, err := devenv.RepoRoot()
	if err != nil {
		return "", "", err
	}
	list := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/opencontainers/runc")
	list.Dir = root
	list.Env = append(os.Environ(), "GOFLAGS=")
	out, err := list.Output()
	if err != nil {
		return "", "", fmt.Errorf("no parity baseline: which libcontainer husk embeds: go list: %v", err)
	}
	want := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	// The first runc in containerd's PATH (see devenv.Start).
	path = filepath.Join(root, ".tools", "bin", "runc")
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("runc"); err != nil {
			return "", "", fmt.Errorf("no parity baseline: no runc; run `make tools`")
		}
	}
	if have := runcVersion(path); have != want {
		return "", "", fmt.Errorf("no parity baseline: %s is runc %s but husk embeds libcontainer %s; "+
			"run `make tools` (hack/install-tools.sh builds runc %s into .tools/bin)", path, have, want, want)
	}
	return path, fmt.Sprintf("runc %s (%s), the release of the libcontainer husk embeds", want, path), nil
}

// runcVersion returns what `runc --version` says its version is, or the
// error.
func runcVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return err.Error()
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimPrefix(first, "runc version ")
}

// runArgs returns `ctr run` arguments selecting runtime rt (runc: the
// baseline), followed by flags.
func runArgs(t *testing.T, rt string, flags ...string) []string {
	args := []string{"run", "--runtime", rt}
	if rt == runc {
		args = append(args, runcBaseline(t)...)
	}
	return append(args, flags...)
}

// parityID is the container id for t under runtime rt. The two ids of a
// case differ only in their suffix, and neither contains the other.
func parityID(t *testing.T, rt string) string {
	return name(t, "on-"+shortRuntime(rt))
}

func shortRuntime(rt string) string {
	switch rt {
	case runc:
		return "runc"
	case husk:
		return "husk"
	}
	return rt
}

// hostView describes process pid as the host sees it: which namespaces it
// shares with the test (the host's), its credentials and security state,
// and its cgroups.
func hostView(t *testing.T, pid int) string {
	t.Helper()
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	// Start returns once the init is told to go on; it may still be
	// libcontainer's init (named "runc:[2:INIT]" by nsexec, under either
	// runtime) for a moment before it execs the program.
	for deadline := time.Now().Add(10 * time.Second); ; {
		comm, err := os.ReadFile(filepath.Join(proc, "comm"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(comm), "runc:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is still %q after 10s", pid, comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var b strings.Builder
	b.WriteString("== init namespaces (host view)\n")
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		self, err1 := os.Readlink(filepath.Join("/proc/self/ns", e.Name()))
		theirs, err2 := os.Readlink(filepath.Join(proc, "ns", e.Name()))
		switch {
		case err1 != nil || err2 != nil:
			fmt.Fprintf(&b, "%s: unreadable\n", e.Name())
		case self == theirs:
			fmt.Fprintf(&b, "%s: host\n", e.Name())
		default:
			fmt.Fprintf(&b, "%s: own\n", e.Name())
		}
	}
	b.WriteString("== init status (host view)\n")
	status, err := os.ReadFile(filepath.Join(proc, "status"))
	if err != nil {
		t.Fatal(err)
	}
	keep := regexp.MustCompile(`^(Uid|Gid|Groups|Umask|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):`)
	for _, l := range strings.Split(string(status), "\n") {
		if keep.MatchString(l) {
			b.WriteString(l + "\n")
		}
	}
	for _, f := range []string{"cgroup", "oom_score_adj"} {
		data, err := os.ReadFile(filepath.Join(proc, f))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== init %s (host view)\n%s", f, data)
	}
	return b.String()
}

// killAndReap SIGKILLs the task id, waits for it to stop, deletes it and
// its container, and returns the exit status containerd recorded.
func killAndReap(t *testing.T, id string) int {
	t.Helper()
	ctr(t, "task", "kill", "-s", "SIGKILL", id)
	stopped := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+\d+\s+STOPPED\s*$`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := ctr(t, "task", "ls")
		if stopped.MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not stop after SIGKILL:\n%s", id, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, stderr, err := bench.Ctr(testCtx(t), "task", "delete", id)
	if err != nil {
		t.Fatalf("ctr task delete %s: %v", id, err)
	}
	ctr(t, "container", "delete", id)
	// `ctr task delete` reports a non-zero status only in a warning.
	if m := regexp.MustCompile(`exit with non-zero exit code (\d+)`).FindStringSubmatch(stderr); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var (
	// The overlay upper and work directories are the container's own
	// snapshot, numbered by containerd in creation order; the lower
	// directories are the image's, the same for both, and stay as they are.
	snapshotRe = regexp.MustCompile(`((?:upperdir|workdir)=[^,\s]*/snapshots/)\d+/`)
	// Peer group numbers (mountinfo's shared:N, master:N) are allocated by
	// the kernel as mounts are made; the propagation type is compared.
	peerGroupRe = regexp.MustCompile(`\b(shared|master|propagate_from):\d+\b`)
)

// normalize rewrites what legitimately differs between two runs of the
// probe, or two errors: the container id (in cgroup paths, and in the cgroup mounts of the
// mount table), the container's snapshot number and mount peer groups.
// Nothing else is touched.
func normalize(out, id string) string {
	out = strings.ReplaceAll(out, id, "ID")
	out = snapshotRe.ReplaceAllString(out, "${1}N/")
	return peerGroupRe.ReplaceAllString(out, "$1:N")
}

// requireSame fails t with a line diff if the runc and husk outputs differ,
// or skips it if that is the case's known difference.
func (c parityCase) requireSame(t *testing.T, want, got string) {
	t.Helper()
	switch {
	case want == got && c.known != "":
		t.Errorf("known difference not seen any more, delete the note: %s", c.known)
	case want == got:
	case c.known != "":
		t.Logf("husk differs from runc (- runc, + husk):\n%s", lineDiff(want, got))
		t.Skip("known difference: " + c.known)
	default:
		t.Errorf("husk differs from runc (- runc, + husk):\n%s", lineDiff(want, got))
	}
}

// ctrProbe is ctr whose failure message shows the probe as <probe>.
func ctrProbe(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := needBench(t).Ctr(testCtx(t), args...)
	if err != nil {
		cmd := strings.ReplaceAll(strings.Join(args, " "), parityProbe, "<probe>")
		t.Fatalf("ctr %s: exit status %d\nstdout: %s\nstderr: %s", cmd, exitCode(err), out, stderr)
	}
	return out
}

// lineDiff returns a line diff of a and b: lines only in a prefixed "- ",
// only in b "+ ", two unchanged lines of context around them, and before
// each hunk the probe section ("== ...") it starts in. Equal texts give "".
func lineDiff(a, b string) string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	// lcs[i][j] is the length of a longest common subsequence of x[i:] and
	// y[j:]; outputs are a few hundred lines, so quadratic is fine.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op      byte // ' ', '-' or '+'
		text    string
		section string
	}
	var lines []line
	section := ""
	for i, j := 0, 0; i < len(x) || j < len(y); {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			if strings.HasPrefix(x[i], "== ") {
				section = x[i]
			}
			lines = append(lines, line{' ', x[i], section})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', x[i], section})
			i++
		default:
			lines = append(lines, line{'+', y[j], section})
			j++
		}
	}
	show := make([]bool, len(lines))
	for k, l := range lines {
		if l.op != ' ' {
			for c := max(k-2, 0); c <= min(k+2, len(lines)-1); c++ {
				show[c] = true
			}
		}
	}
	var buf strings.Builder
	for k, l := range lines {
		if !show[k] {
			continue
		}
		if k == 0 || !show[k-1] {
			fmt.Fprintf(&buf, "@@ %s\n", l.section)
		}
		fmt.Fprintf(&buf, "%c %s\n", l.op, l.text)
	}
	return buf.String()
}
