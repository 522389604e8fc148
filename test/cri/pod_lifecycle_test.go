package cri

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sleeper runs until SIGTERM and then exits 0, so that `crictl stop` is a
// graceful stop (busybox sleep as a PID 1 would ignore SIGTERM).
func sleeper(before string) []string {
	return []string{"sh", "-c", before + "trap 'exit 0' TERM; sleep 3600 & wait"}
}

// TestPodOfTwoContainers walks a pod through the CRI as kubelet would: runp,
// two containers created and started in it, exec, logs, the listings, then
// stop, rm, stopp and rmp; on the way it checks the pod's network (an address
// on the bench's bridge, seen from both containers), the namespaces the
// containers share (network, IPC, UTS: the pause process's) and the one
// they do not (PID), and that the whole pod runs under one shim process.
func TestPodOfTwoContainers(t *testing.T) {
	forEachHandler(t, func(t *testing.T, handler string) {
		p := runPod(t, handler, podOpts{})

		sb := p.inspect(t)
		if sb.Status.State != "SANDBOX_READY" {
			t.Fatalf("pod state %s, want SANDBOX_READY", sb.Status.State)
		}
		if sb.Status.RuntimeHandler != handler {
			t.Errorf("pod runtime handler %q, want %q", sb.Status.RuntimeHandler, handler)
		}
		if o := sb.Status.Linux.Namespaces.Options; o.Network != "POD" || o.Ipc != "POD" || o.Pid != "CONTAINER" {
			t.Errorf("namespace options %+v, want network POD, ipc POD, pid CONTAINER", o)
		}
		podIP, err := netip.ParseAddr(sb.Status.Network.IP)
		if err != nil {
			t.Fatalf("pod IP %q: %v", sb.Status.Network.IP, err)
		}
		n := bench.CNI()
		if !n.Subnet.Contains(podIP) || podIP == n.Gateway {
			t.Errorf("pod IP %s is not a host address of the bench's subnet %s", podIP, n.Subnet)
		}
		if ports := listDir(filepath.Join("/sys/class/net", n.Bridge, "brif")); len(ports) != 1 {
			t.Errorf("bridge %s has ports %v, want the pod's veth", n.Bridge, ports)
		}

		c1 := p.start(t, "sleeper", sleeper("")...)
		c2 := p.start(t, "talker", sleeper("echo hello from talker; ")...)

		// crictl ps / pods.
		var ps struct {
			Containers []struct {
				ID           string `json:"id"`
				PodSandboxID string `json:"podSandboxId"`
				State        string `json:"state"`
				Metadata     struct{ Name string }
			} `json:"containers"`
		}
		if err := json.Unmarshal([]byte(crictl(t, "ps", "-o", "json", "--pod", p.ID)), &ps); err != nil {
			t.Fatal(err)
		}
		running := map[string]string{}
		for _, c := range ps.Containers {
			if c.PodSandboxID != p.ID {
				t.Errorf("container %s of pod %s listed for pod %s", c.ID, c.PodSandboxID, p.ID)
			}
			running[c.ID] = c.Metadata.Name + " " + c.State
		}
		if running[c1] != "sleeper CONTAINER_RUNNING" || running[c2] != "talker CONTAINER_RUNNING" || len(running) != 2 {
			t.Errorf("crictl ps --pod: %v, want sleeper and talker running", running)
		}
		if out := crictl(t, "pods", "-q", "--name", p.Name, "--state", "ready"); strings.TrimSpace(out) != p.ID {
			t.Errorf("crictl pods --name %s --state ready: %q, want %s", p.Name, out, p.ID)
		}

		// exec: ExecSync (-s) through the CRI's gRPC, Exec through its
		// streaming server; output and exit status come back from both.
		if out := execSync(t, c1, "echo", "hi"); out != "hi\n" {
			t.Errorf("exec -s echo hi: %q", out)
		}
		// crictl exec -s exits 1 on any failure; the status is in the error.
		if _, stderr, err := bench.Crictl(testCtx(t), "exec", "-s", c1, "sh", "-c", "exit 3"); err == nil || !strings.Contains(stderr, "exited with 3") {
			t.Errorf("exec -s exit 3: %v, want \"exited with 3\"", err)
		}
		if out := crictl(t, "exec", c2, "echo", "streamed"); out != "streamed\n" {
			t.Errorf("exec echo streamed: %q", out)
		}
		if _, stderr, err := bench.Crictl(testCtx(t), "exec", c2, "sh", "-c", "exit 3"); err == nil || !strings.Contains(stderr, "exit code 3") {
			t.Errorf("exec exit 3: %v, want \"exit code 3\"", err)
		}

		// Both containers see the pod's address on their eth0.
		inet := regexp.MustCompile(`inet ([0-9.]+)/`)
		for _, c := range []string{c1, c2} {
			out := execSync(t, c, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
			if m := inet.FindStringSubmatch(out); m == nil || m[1] != podIP.String() {
				t.Errorf("container %.13s: eth0 %q, want %s", c, strings.TrimSpace(out), podIP)
			}
		}

		// Namespaces: network, IPC and UTS are the pause process's, PID is
		// each container's own.
		pause := sb.Info.Pid
		if pause <= 0 {
			t.Fatalf("inspectp gives no sandbox pid (info %+v)", sb.Info)
		}
		ns := func(c string) map[string]string {
			out := execSync(t, c, "sh", "-c", "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done")
			f := strings.Fields(out)
			if len(f) != 4 {
				t.Fatalf("readlink ns: %q", out)
			}
			return map[string]string{"net": f[0], "ipc": f[1], "uts": f[2], "pid": f[3]}
		}
		ns1, ns2 := ns(c1), ns(c2)
		for _, kind := range []string{"net", "ipc", "uts"} {
			host, err := os.Readlink("/proc/self/ns/" + kind)
			if err != nil {
				t.Fatal(err)
			}
			sandbox, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pause), "ns", kind))
			if err != nil {
				t.Fatal(err)
			}
			if ns1[kind] != sandbox || ns2[kind] != sandbox {
				t.Errorf("%s namespace: sleeper %s, talker %s, pause %s; want all the pause's", kind, ns1[kind], ns2[kind], sandbox)
			}
			if sandbox == host {
				t.Errorf("%s namespace of the pod is the host's (%s)", kind, host)
			}
		}
		pausePID, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pause), "ns", "pid"))
		if err != nil {
			t.Fatal(err)
		}
		if ns1["pid"] == ns2["pid"] || ns1["pid"] == pausePID || ns2["pid"] == pausePID {
			t.Errorf("pid namespaces: sleeper %s, talker %s, pause %s; want one each", ns1["pid"], ns2["pid"], pausePID)
		}
		for _, c := range []string{c1, c2} {
			if h := strings.TrimSpace(execSync(t, c, "hostname")); h != p.Hostname {
				t.Errorf("container %.13s: hostname %q, want the pod's %q", c, h, p.Hostname)
			}
		}

		// One shim process serves the sandbox and both containers.
		shims, err := Shims(bench.Address())
		if err != nil {
			t.Fatal(err)
		}
		served := map[int][]string{}
		for _, task := range []struct {
			name string
			pid  int
		}{{"pause", pause}, {"sleeper", inspectContainer(t, c1).Info.Pid}, {"talker", inspectContainer(t, c2).Info.Pid}} {
			s, err := ShimOf(task.pid, shims)
			if err != nil {
				t.Errorf("%s (pid %d): %v", task.name, task.pid, err)
				continue
			}
			served[s.Pid] = append(served[s.Pid], task.name)
			if want := "containerd-shim-" + handler + "-v2"; s.Binary != want {
				t.Errorf("%s runs under %s, want %s", task.name, s.Binary, want)
			}
			if s.ID != p.ID {
				t.Errorf("%s runs under the shim of %.13s, want the pod's (%.13s)", task.name, s.ID, p.ID)
			}
		}
		if len(served) != 1 {
			t.Errorf("the pod's tasks run under %d shims (%v), want one", len(served), served)
		}
		t.Logf("shims of the bench: %+v; pod tasks by shim pid: %v", shims, served)

		// logs: what the talker printed.
		if logs := waitForLog(t, c2, "hello from talker"); logs != "hello from talker\n" {
			t.Errorf("crictl logs talker: %q", logs)
		}
		if lp := inspectContainer(t, c2).Status.LogPath; lp != filepath.Join(p.LogDir, "talker.log") {
			t.Errorf("talker's log path %s, want under the pod's log directory %s", lp, p.LogDir)
		}

		// Graceful stop, then removal, in kubelet's order.
		crictl(t, "stop", "--timeout", "10", c1, c2)
		for _, c := range []string{c1, c2} {
			if st := inspectContainer(t, c).Status; st.State != "CONTAINER_EXITED" || st.ExitCode != 0 {
				t.Errorf("container %.13s after stop: %s, exit code %d; want CONTAINER_EXITED, 0", c, st.State, st.ExitCode)
			}
		}
		crictl(t, "rm", c1, c2)
		crictl(t, "stopp", p.ID)
		if st := p.inspect(t).Status.State; st != "SANDBOX_NOTREADY" {
			t.Errorf("pod state after stopp: %s, want SANDBOX_NOTREADY", st)
		}
		crictl(t, "rmp", p.ID)
		// checkNothingLeft runs when the test ends.
	})
}

// TestPauseReapsOrphans runs a pod whose containers share one PID namespace,
// where the pause process is PID 1: an orphan of an exec (reparented to PID
// 1) must be reaped once it exits, not stay a zombie.
func TestPauseReapsOrphans(t *testing.T) {
	forEachHandler(t, func(t *testing.T, handler string) {
		p := runPod(t, handler, podOpts{sharePID: true})
		c := p.start(t, "parent", sleeper("")...)
		if init := execSync(t, c, "cat", "/proc/1/cmdline"); strings.TrimRight(init, "\x00") != "/pause" {
			t.Fatalf("PID 1 of the pod is %q, want /pause", init)
		}
		out := execSync(t, c, "sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!")
		orphan := strings.TrimSpace(out)
		if _, err := strconv.Atoi(orphan); err != nil {
			t.Fatalf("orphan pid %q", out)
		}
		stat := func() string {
			out := execSync(t, c, "sh", "-c", "cat /proc/"+orphan+"/stat 2>/dev/null || echo gone")
			if strings.TrimSpace(out) == "gone" {
				return ""
			}
			return out
		}
		// While it sleeps, its parent is PID 1: the pause process.
		if s := strings.Fields(stat()); len(s) > 3 && s[3] != "1" {
			t.Errorf("orphan %s has parent %s, want 1 (pause)", orphan, s[3])
		}
		var last string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if last = stat(); last == "" {
				return
			}
		}
		t.Errorf("orphan %s not reaped 5s after it exited: %s", orphan, strings.TrimSpace(last))
	})
}
