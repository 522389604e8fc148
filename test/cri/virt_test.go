package cri

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/test/devenv"
)

// qemuBinary is Debian's QEMU, which the virt handler of the bench runs.
const qemuBinary = "/usr/bin/qemu-system-x86_64"

// virtSkip says why the bench has no virt handler ("" when it has one).
var virtSkip string

// virtSetup returns the guest image the bench's virt handler boots, or ""
// with virtSkip saying what is missing.
func virtSetup(root string) string {
	guest := filepath.Join(root, ".tools", "guest")
	if _, err := guestimage.Load(guest); err != nil {
		virtSkip = fmt.Sprintf("no guest image in %s (make guest): %v", guest, err)
		return ""
	}
	if err := unix.Access(qemuBinary, unix.X_OK); err != nil {
		virtSkip = fmt.Sprintf("no %s (apt-get install qemu-system-x86): %v", qemuBinary, err)
		return ""
	}
	return guest
}

// needVirt skips t when the bench cannot run VM pods, saying why, and
// fails it instead under CI=true, where the VM tier must run.
func needVirt(t *testing.T) {
	t.Helper()
	needBench(t)
	if testing.Short() {
		t.Skip("boots VMs in QEMU (TCG without KVM: seconds each); skipped with -short")
	}
	if virtSkip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the virt handler's tests must run under CI: %s", virtSkip)
		}
		t.Skip(virtSkip)
	}
}

// runVirtPod is runPod on the virt handler; once the pod is removed, it
// also checks that no QEMU of the pod and no husk state of it are left.
func runVirtPod(t *testing.T, o podOpts) *pod {
	t.Helper()
	needVirt(t)
	var p *pod
	// Registered first, so it runs after runPod's removal.
	t.Cleanup(func() {
		if p != nil {
			checkVirtLeft(t, p)
		}
	})
	p = runPod(t, devenv.VirtHandler, o)
	return p
}

// checkVirtLeft fails t for a QEMU process or husk state of pod p.
func checkVirtLeft(t *testing.T, p *pod) {
	t.Helper()
	if p.ID == "" {
		return
	}
	// The VM's process is reaped as the shim exits: give it a moment.
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if pids = qemuOf(p.ID); len(pids) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(pids) > 0 {
		t.Errorf("QEMU %v of pod %.13s still runs", pids, p.ID)
	}
	if dir := persist.Dir(devenv.VirtStateDir(bench.Dir), devenv.CRINamespace, p.ID); exists(dir) {
		t.Errorf("husk's state of the VM pod %s left", dir)
	}
}

// qemuOf returns the pids of the QEMU processes whose VM is sandbox id's
// (the qemu hypervisor names each VM husk-<sandbox id>).
func qemuOf(id string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		args := qemuArgs(p)
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-name" && args[i+1] == "husk-"+id {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func qemuArgs(cmdline string) []string {
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
}

// qemuArg returns the value QEMU process pid was given for flag.
func qemuArg(pid int, flag string) string {
	args := qemuArgs(fmt.Sprintf("/proc/%d/cmdline", pid))
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// startIn creates and starts a busybox container in p as p.start does,
// with linux.resources res (CRI LinuxContainerResources; nil: none).
func (p *pod) startIn(t *testing.T, name string, res map[string]any, cmd ...string) string {
	t.Helper()
	linux := map[string]any{"security_context": map[string]any{"namespace_options": p.nsOptions}}
	if res != nil {
		linux["resources"] = res
	}
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  cmd,
		"log_path": name + ".log",
		"linux":    linux,
	}
	path := writeJSON(t, filepath.Join(p.dir, name+".json"), cfg)
	id := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
	p.containers = append(p.containers, id)
	crictl(t, "start", id)
	return id
}

// TestVirtPodOfTwoContainers walks a VM pod through the CRI as kubelet
// would: one QEMU for the pod, two containers in it that share the pod's
// IPC and UTS namespaces (and hostname) but not their PID namespaces, exec
// through ExecSync and the streaming server, logs, stats, inspect, a
// graceful stop; after stopp and rmp no QEMU and no state is left.
func TestVirtPodOfTwoContainers(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	sb := p.inspect(t)
	if sb.Status.State != "SANDBOX_READY" || sb.Status.RuntimeHandler != devenv.VirtHandler {
		t.Fatalf("pod %s on handler %q, want SANDBOX_READY on %s", sb.Status.State, sb.Status.RuntimeHandler, devenv.VirtHandler)
	}
	vms := qemuOf(p.ID)
	if len(vms) != 1 {
		t.Fatalf("QEMU processes of the pod: %v, want one", vms)
	}
	podIP := podAddr(t, sb)
	// The pause container is the VM: its pid is QEMU's.
	if sb.Info.Pid != vms[0] {
		t.Errorf("inspectp pid %d, want the VM's process %d", sb.Info.Pid, vms[0])
	}

	c1 := p.start(t, "sleeper", sleeper("")...)
	c2 := p.start(t, "talker", sleeper("echo hello from talker; ")...)
	if vms := qemuOf(p.ID); len(vms) != 1 {
		t.Errorf("QEMU processes of the pod with two containers: %v, want the one", vms)
	}

	// exec: ExecSync and the streaming server; status back from both.
	if out := execSync(t, c1, "echo", "hi"); out != "hi\n" {
		t.Errorf("exec -s echo hi: %q", out)
	}
	if _, stderr, err := bench.Crictl(testCtx(t), "exec", "-s", c1, "sh", "-c", "exit 3"); err == nil || !strings.Contains(stderr, "exited with 3") {
		t.Errorf("exec -s exit 3: %v, want \"exited with 3\"", err)
	}
	if out := crictl(t, "exec", c2, "echo", "streamed"); out != "streamed\n" {
		t.Errorf("exec echo streamed: %q", out)
	}
	// The guest's kernel, not the host's.
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	if k := strings.TrimSpace(execSync(t, c1, "uname", "-r")); k == unix.ByteSliceToString(uts.Release[:]) {
		t.Errorf("the container runs on the host's kernel %s", k)
	}

	// Namespaces in the guest: IPC and UTS are the pod's, PID each
	// container's own; the hostname is the pod's.
	ns := func(c string) map[string]string {
		out := execSync(t, c, "sh", "-c", "for n in ipc uts pid; do readlink /proc/self/ns/$n; done; hostname")
		f := strings.Fields(out)
		if len(f) != 4 {
			t.Fatalf("readlink ns: %q", out)
		}
		return map[string]string{"ipc": f[0], "uts": f[1], "pid": f[2], "hostname": f[3]}
	}
	ns1, ns2 := ns(c1), ns(c2)
	for _, kind := range []string{"ipc", "uts"} {
		if ns1[kind] != ns2[kind] {
			t.Errorf("%s namespaces: sleeper %s, talker %s; want the pod's", kind, ns1[kind], ns2[kind])
		}
	}
	if ns1["pid"] == ns2["pid"] {
		t.Errorf("both containers in PID namespace %s; want one each (shareProcessNamespace is off)", ns1["pid"])
	}
	if ns1["hostname"] != p.Hostname || ns2["hostname"] != p.Hostname {
		t.Errorf("hostnames %q, %q; want the pod's %q", ns1["hostname"], ns2["hostname"], p.Hostname)
	}
	// /dev/shm is the pod's: what one container writes the other reads.
	execSync(t, c1, "sh", "-c", "echo shared > /dev/shm/pod-file")
	if out := execSync(t, c2, "cat", "/dev/shm/pod-file"); out != "shared\n" {
		t.Errorf("talker reads %q from the sleeper's /dev/shm file", out)
	}

	// The pod's network: the pod's address on eth0 in both containers,
	// and a server in one reached from the host at that address.
	inet := regexp.MustCompile(`inet ([0-9.]+)/`)
	for _, c := range []string{c1, c2} {
		out := execSync(t, c, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if m := inet.FindStringSubmatch(out); m == nil || m[1] != podIP.String() {
			t.Errorf("container %.13s: eth0 %q, want %s", c, strings.TrimSpace(out), podIP)
		}
	}
	serve(t, c1, "pod of two")
	if got := httpGet(t, podIP); got != "pod of two\n" {
		t.Errorf("the host got %q from the pod's server at %s", got, podIP)
	}

	// logs.
	if logs := waitForLog(t, c2, "hello from talker"); logs != "hello from talker\n" {
		t.Errorf("crictl logs talker: %q", logs)
	}

	// inspect and stats.
	if st := inspectContainer(t, c1); st.Status.State != "CONTAINER_RUNNING" || st.Info.Pid <= 0 {
		t.Errorf("inspect sleeper: %+v, want running with a pid", st)
	}
	var stats struct {
		Stats []struct {
			Attributes struct{ ID string } `json:"attributes"`
			Memory     struct {
				WorkingSetBytes struct{ Value string } `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(crictl(t, "stats", "-o", "json", "--id", c1)), &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats.Stats) != 1 || stats.Stats[0].Attributes.ID != c1 {
		t.Errorf("crictl stats --id sleeper: %+v", stats)
	} else if n, _ := strconv.ParseUint(stats.Stats[0].Memory.WorkingSetBytes.Value, 10, 64); n == 0 {
		t.Errorf("sleeper's working set %q, want its guest cgroup's usage", stats.Stats[0].Memory.WorkingSetBytes.Value)
	}

	// The pod's stats are its host cgroup's, which holds the VM: QEMU's
	// memory, guest memory it touched included.
	var podStats struct {
		Stats []struct {
			Linux struct {
				Memory struct {
					WorkingSetBytes struct{ Value string } `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"linux"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(crictl(t, "statsp", "-o", "json", "--id", p.ID)), &podStats); err != nil {
		t.Fatal(err)
	}
	if len(podStats.Stats) != 1 {
		t.Errorf("crictl statsp --id: %+v, want the pod's", podStats)
	} else if n, _ := strconv.ParseUint(podStats.Stats[0].Linux.Memory.WorkingSetBytes.Value, 10, 64); n < 32<<20 {
		t.Errorf("the pod's working set %d bytes, want the VM's (tens of MiB at least)", n)
	}

	// Graceful stop, removal, then the pod.
	crictl(t, "stop", "--timeout", "10", c1, c2)
	for _, c := range []string{c1, c2} {
		if st := inspectContainer(t, c).Status; st.State != "CONTAINER_EXITED" || st.ExitCode != 0 {
			t.Errorf("container %.13s after stop: %s, exit code %d; want CONTAINER_EXITED, 0", c, st.State, st.ExitCode)
		}
	}
	crictl(t, "rm", c1, c2)
	crictl(t, "stopp", p.ID)
	crictl(t, "rmp", p.ID)
	// The cleanups check that nothing of the pod is left.
}

// TestVirtPodSizing: a VM pod is the configured VM (1 vCPU, 256 MiB) plus
// the pod's resources as the CRI passes them (one CPU of quota is a vCPU,
// the memory limit is added), which the guest sees; a pod larger than the
// host is refused at runp and leaves nothing.
func TestVirtPodSizing(t *testing.T) {
	p := runVirtPod(t, podOpts{resources: map[string]any{
		"cpu_period": 100000, "cpu_quota": 100000, "memory_limit_in_bytes": 128 << 20,
	}})
	vms := qemuOf(p.ID)
	if len(vms) != 1 {
		t.Fatalf("QEMU processes of the pod: %v, want one", vms)
	}
	if smp, m := qemuArg(vms[0], "-smp"), qemuArg(vms[0], "-m"); smp != "2" || m != "384" {
		t.Errorf("QEMU -smp %s -m %s, want 2 vCPUs (1+1) and 384 MiB (256+128)", smp, m)
	}
	c := p.start(t, "sized", sleeper("")...)
	if n := strings.TrimSpace(execSync(t, c, "nproc")); n != "2" {
		t.Errorf("nproc in the guest: %s, want 2", n)
	}
	crictl(t, "stop", "--timeout", "10", c)
	crictl(t, "rm", c)

	big := newPod(t, devenv.VirtHandler, podOpts{suffix: "big", resources: map[string]any{
		"cpu_period": 100000, "cpu_quota": 100000 * 100,
	}})
	// Whatever runp made of the pod's cgroup_parent goes, as kubelet
	// would remove it.
	t.Cleanup(func() { removeCgroup(t, big.CgroupParent) })
	out, stderr, err := bench.Crictl(testCtx(t), "runp", "--runtime", devenv.VirtHandler, big.config)
	if err == nil {
		big.ID = strings.TrimSpace(out)
		t.Cleanup(func() { big.remove(t) })
		t.Fatalf("a pod of 100 CPUs ran (%s)", big.ID)
	}
	if !strings.Contains(stderr, "vCPUs: more than the host's online CPUs") {
		t.Errorf("runp of a pod of 100 CPUs: %v, want the bound named", err)
	}
}

// TestVirtPodMemoryLimit: a container's memory limit is applied by the
// guest's cgroups (its own, not the VM's): a container that goes over is
// OOM-killed in the guest and the CRI reports it as OOMKilled, as it does
// a container without a limit that runs the VM out of memory; crictl
// update changes another container's limit in the guest.
func TestVirtPodMemoryLimit(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	limited := p.startIn(t, "limited", map[string]any{"memory_limit_in_bytes": 64 << 20}, sleeper("")...)
	if got := memoryLimit(t, limited); got != 64<<20 {
		t.Errorf("limited's memory limit in the guest: %d, want %d", got, 64<<20)
	}
	crictl(t, "update", "--memory", strconv.Itoa(96<<20), limited)
	if got := memoryLimit(t, limited); got != 96<<20 {
		t.Errorf("limited's memory limit in the guest after crictl update: %d, want %d", got, 96<<20)
	}

	// 128 MiB in one buffer, in a container of 32 MiB (the VM has 256).
	hog := p.startIn(t, "hog", map[string]any{"memory_limit_in_bytes": 32 << 20},
		"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
	var st struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"status"`
	}
	// A container without a limit that takes more than the VM has is
	// killed by the guest's own OOM killer, and that too is reported as
	// OOMKilled (cgroup v2 counts every OOM kill of its processes).
	vmHog := p.startIn(t, "vmhog", nil, "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1")
	for _, c := range []string{hog, vmHog} {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if err := json.Unmarshal([]byte(crictl(t, "inspect", "-o", "json", c)), &st); err != nil {
				t.Fatal(err)
			}
			if st.Status.State == "CONTAINER_EXITED" || time.Now().After(deadline) {
				break
			}
		}
		if st.Status.State != "CONTAINER_EXITED" || st.Status.Reason != "OOMKilled" || st.Status.ExitCode != 137 {
			t.Errorf("container %.13s: %+v, want exited 137 with reason OOMKilled", c, st.Status)
		}
	}
	// The VM and its other container live on.
	if out := execSync(t, limited, "echo", "alive"); out != "alive\n" {
		t.Errorf("limited after the hogs' OOM kills: %q", out)
	}
	crictl(t, "stop", "--timeout", "10", limited)
	crictl(t, "rm", limited, hog, vmHog)
}

// memoryLimit reads container id's memory limit from its cgroup in the
// guest (cgroup v2, its own cgroup namespace: its cgroup is the root).
func memoryLimit(t *testing.T, id string) int64 {
	t.Helper()
	out := strings.TrimSpace(execSync(t, id, "sh", "-c",
		"cat /sys/fs/cgroup/memory.max"))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("memory limit in the guest: %q", out)
	}
	return n
}

// TestVirtFivePods: five VM pods started at once each run in a QEMU of
// their own, each with a container that answers exec; then all are
// removed and nothing of any is left.
func TestVirtFivePods(t *testing.T) {
	needVirt(t)
	const n = 5
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = newPod(t, devenv.VirtHandler, podOpts{suffix: strconv.Itoa(i)})
	}
	t.Cleanup(func() {
		ctx := testCtx(t)
		for _, p := range pods {
			if p.ID == "" {
				continue
			}
			if _, _, err := bench.Crictl(ctx, "stopp", p.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if _, _, err := bench.Crictl(ctx, "rmp", "--force", p.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		for _, p := range pods {
			checkNothingLeft(t, p)
			checkVirtLeft(t, p)
		}
	})
	t0 := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Five VMs booting at once may each take up to the handler's
			// boot timeout under TCG: longer than testCtx allows.
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			out, _, err := bench.Crictl(ctx, "runp", "--runtime", devenv.VirtHandler, p.config)
			if err != nil {
				errs[i] = err
				return
			}
			p.ID = strings.TrimSpace(out)
			cfg := map[string]any{
				"metadata": map[string]any{"name": "c"},
				"image":    map[string]any{"image": devenv.BusyboxRef},
				"command":  sleeper(serveCmd("pod "+strconv.Itoa(i)) + "; "),
				"log_path": "c.log",
				"linux":    map[string]any{"security_context": map[string]any{"namespace_options": p.nsOptions}},
			}
			b, _ := json.Marshal(cfg)
			path := filepath.Join(p.dir, "c.json")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				errs[i] = err
				return
			}
			out, _, err = bench.Crictl(ctx, "create", "--no-pull", p.ID, path, p.config)
			if err != nil {
				errs[i] = err
				return
			}
			c := strings.TrimSpace(out)
			p.containers = append(p.containers, c)
			if _, _, err := bench.Crictl(ctx, "start", c); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
	}
	t.Logf("%d VM pods, each with a running container, in %s", n, time.Since(t0).Round(time.Millisecond))
	seen := map[int]bool{}
	for i, p := range pods {
		vms := qemuOf(p.ID)
		if len(vms) != 1 || seen[vms[0]] {
			t.Errorf("pod %d: QEMU processes %v, want one of its own", i, vms)
		}
		for _, v := range vms {
			seen[v] = true
		}
		if out := execSync(t, p.containers[0], "hostname"); strings.TrimSpace(out) != p.Hostname {
			t.Errorf("pod %d: hostname %q, want %q", i, out, p.Hostname)
		}
	}
	// Each pod's server answers the host at the pod's address, and the
	// next pod (each in a VM of its own) reaches it there too.
	for i, p := range pods {
		ip := podAddr(t, p.inspect(t))
		want := "pod " + strconv.Itoa(i) + "\n"
		if got := httpGet(t, ip); got != want {
			t.Errorf("the host got %q from pod %d at %s, want %q", got, i, ip, want)
		}
		from := pods[(i+1)%n]
		// nc, not wget: this busybox-static's wget crashes (status 139),
		// on the host as well as in a VM.
		got := execSync(t, from.containers[0], "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 "+ip.String()+" 8080")
		if !strings.HasPrefix(got, "HTTP/1.") || !strings.HasSuffix(got, "\r\n\r\n"+want) {
			t.Errorf("pod %d got %q from pod %d at %s, want a response of %q", (i+1)%n, got, i, ip, want)
		}
	}
}

// serveCmd is a shell command that serves body over HTTP on port 8080
// (busybox httpd, in the background).
func serveCmd(body string) string {
	return "mkdir -p /tmp/www && echo '" + body + "' > /tmp/www/index.html && httpd -p 8080 -h /tmp/www"
}

// serve starts serveCmd(body) in container c.
func serve(t *testing.T, c, body string) {
	t.Helper()
	execSync(t, c, "sh", "-c", serveCmd(body))
}

// podAddr is the pod's IP from inspectp, checked to be the bench's.
func podAddr(t *testing.T, sb inspectp) netip.Addr {
	t.Helper()
	ip, err := netip.ParseAddr(sb.Status.Network.IP)
	if err != nil {
		t.Fatalf("pod IP %q: %v", sb.Status.Network.IP, err)
	}
	if n := bench.CNI(); !n.Subnet.Contains(ip) || ip == n.Gateway {
		t.Errorf("pod IP %s is not a host address of the bench's subnet %s", ip, n.Subnet)
	}
	return ip
}

// httpGet fetches / from port 8080 of ip (a pod of the bench's network,
// through its bridge), retrying while the server starts.
func httpGet(t *testing.T, ip netip.Addr) string {
	t.Helper()
	url := "http://" + netip.AddrPortFrom(ip, 8080).String() + "/"
	body, err := getRetrying(url, 5*time.Second)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
	}
	return body
}

// getRetrying fetches url (each try bounded by perTry) until it answers
// 200 OK, for at most 30 s; it returns the body (at most 64 KiB), or the
// last try's error.
func getRetrying(url string, perTry time.Duration) (string, error) {
	cl := &http.Client{Timeout: perTry}
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		resp, err := cl.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return string(b), nil
		}
		last = fmt.Errorf("status %s, %v", resp.Status, err)
	}
	return "", last
}

// TestVirtPodSharedPID: a VM pod with shareProcessNamespace: its
// containers share one PID namespace in the guest, whose PID 1 is the
// agent's holder (not /pause: there is no pause process in a VM pod) and
// reaps an exec's orphan once it exits.
func TestVirtPodSharedPID(t *testing.T) {
	p := runVirtPod(t, podOpts{sharePID: true})
	c := p.start(t, "parent", sleeper("")...)
	other := p.start(t, "other", "sleep", "4242")
	if init := execSync(t, c, "cat", "/proc/1/cmdline"); !strings.Contains(init, "pod-pid-holder") {
		t.Fatalf("PID 1 of the pod is %q, want the agent's holder", init)
	}
	if out := execSync(t, c, "ps", "-o", "args"); !strings.Contains(out, "sleep 4242") {
		t.Errorf("ps in one container does not show the other's sleep:\n%s", out)
	}
	orphan := strings.TrimSpace(execSync(t, c, "sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"))
	if _, err := strconv.Atoi(orphan); err != nil {
		t.Fatalf("orphan pid %q", orphan)
	}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		last = strings.TrimSpace(execSync(t, c, "sh", "-c", "cat /proc/"+orphan+"/stat 2>/dev/null || echo gone"))
		if last == "gone" {
			break
		}
	}
	if last != "gone" {
		t.Errorf("orphan %s not reaped after it exited: %s", orphan, last)
	}
	crictl(t, "stop", "--timeout", "10", c, other)
	crictl(t, "rm", c, other)
}

// TestVirtPodShimKilled: SIGKILL the shim of a VM pod with a running
// container; containerd's cleanup (the shim's delete) ends the VM, and
// once the pod is removed no QEMU, state or network of it is left.
func TestVirtPodShimKilled(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	p.start(t, "a", "sleep", "1000")
	s := shimOfPod(t, p)
	if err := unix.Kill(s.Pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if out := crictl(t, "ps", "-a", "--pod", p.ID); !strings.Contains(out, "Running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container still runs after its shim was killed")
		}
	}
	p.remove(t)
	checkVirtLeft(t, p)
}

// TestVirtPodTerminal: `crictl exec -it` runs a process on a terminal in
// the guest, sized as the caller's, with stdin on it; `crictl attach`
// reaches a tty container's shell, which answers what is typed.
func TestVirtPodTerminal(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	c := p.start(t, "sleeper", sleeper("")...)
	var out string
	// The size is set right after the start: wait for it, as under runc.
	for attempt := 1; attempt <= 3; attempt++ {
		cmd := bench.CrictlCmd(testCtx(t), "exec", "-it", c, "sh", "-c",
			`tty; for i in $(seq 50); do s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] && break; sleep 0.1; done; echo "size $s"; [ -t 0 ] && echo stdin-is-tty`)
		master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 41, Cols: 113})
		if err != nil {
			t.Fatalf("starting crictl on a pty: %v", err)
		}
		out = readPty(master)
		master.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("crictl exec -it: %v\n%s", err, out)
		}
		if strings.Contains(out, "stdin-is-tty") {
			break
		}
		t.Logf("attempt %d: terminal output cut short: %q", attempt, out)
	}
	for _, want := range []string{"/dev/pts/", "size 41 113", "stdin-is-tty"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec -it output %q lacks %q", out, want)
		}
	}

	// A container on a terminal with stdin, attached to.
	cfg := map[string]any{
		"metadata": map[string]any{"name": "shell"},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  []string{"sh"},
		"tty":      true,
		"stdin":    true,
		"log_path": "shell.log",
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": p.nsOptions}},
	}
	path := writeJSON(t, filepath.Join(p.dir, "shell.json"), cfg)
	shell := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
	p.containers = append(p.containers, shell)
	crictl(t, "start", shell)
	cmd := bench.CrictlCmd(testCtx(t), "attach", "-it", shell)
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatalf("starting crictl attach on a pty: %v", err)
	}
	got := make(chan string, 1)
	go func() { got <- readPty(master) }()
	// Type until the shell answers (attach connects after it started).
	answered := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !answered; time.Sleep(500 * time.Millisecond) {
		if _, err := master.Write([]byte("echo attached-$((40+2))\n")); err != nil {
			break
		}
		answered = strings.Contains(logOf(t, shell), "attached-42")
	}
	_, _ = master.Write([]byte("exit\n"))
	select {
	case s := <-got:
		if !strings.Contains(s, "attached-42") {
			t.Errorf("crictl attach output %q lacks the shell's answer", s)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("crictl attach did not end after the shell exited")
		_ = cmd.Process.Kill()
	}
	master.Close()
	_ = cmd.Wait()
	if !answered {
		t.Errorf("the attached shell never answered (log: %q)", logOf(t, shell))
	}
	crictl(t, "stop", "--timeout", "10", c, shell)
	crictl(t, "rm", c, shell)
}

// logOf is a container's log as crictl logs prints it (errors: "").
func logOf(t *testing.T, id string) string {
	out, _, err := bench.Crictl(testCtx(t), "logs", id)
	if err != nil {
		return ""
	}
	return out
}

// readPty reads a pty master until the other side is gone (EIO).
func readPty(f *os.File) string {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, f)
	if err != nil && !errors.Is(err, syscall.EIO) {
		buf.WriteString("\n[read error: " + err.Error() + "]")
	}
	return buf.String()
}

// TestVirtPodContainerdRestart: containerd restarts under a running VM pod
// (its shim and VM live on); afterwards the CRI still has the pod ready,
// the same QEMU runs it, exec reaches its container, and the pod is
// removed as any other.
func TestVirtPodContainerdRestart(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	c := p.start(t, "sleeper", sleeper("echo before; ")...)
	vms := qemuOf(p.ID)
	if len(vms) != 1 {
		t.Fatalf("QEMU processes of the pod: %v, want one", vms)
	}
	survivesContainerdRestart(t, p, c, vms[0])
	if st := inspectContainer(t, c).Status; st.State != "CONTAINER_RUNNING" {
		t.Errorf("container after containerd's restart: %s", st.State)
	}
	crictl(t, "stop", "--timeout", "10", c)
	crictl(t, "rm", c)
}

// survivesContainerdRestart restarts the bench's containerd with VM pod p
// running (its VM's process vm, container c): the pod stays ready, with
// the same VM and the same shim, and an exec in c works.
func survivesContainerdRestart(t *testing.T, p *pod, c string, vm int) {
	t.Helper()
	shim := shimOfPod(t, p)
	if err := bench.Restart(testCtx(t)); err != nil {
		t.Fatalf("restarting containerd: %v", err)
	}
	if st := p.inspect(t).Status.State; st != "SANDBOX_READY" {
		t.Errorf("pod after containerd's restart: %s, want SANDBOX_READY", st)
	}
	if now := qemuOf(p.ID); len(now) != 1 || now[0] != vm {
		t.Errorf("QEMU of the pod after containerd's restart: %v, want [%d]", now, vm)
	}
	if now := shimOfPod(t, p); now.Pid != shim.Pid {
		t.Errorf("the pod's shim after containerd's restart: %d, want %d", now.Pid, shim.Pid)
	}
	if out := execSync(t, c, "echo", "after"); out != "after\n" {
		t.Errorf("exec after containerd's restart: %q", out)
	}
}

// TestVirtPodConfigMapUpdate: a read-only host directory mounted into a VM
// pod's container (as kubelet mounts a ConfigMap) is seen in the guest, and
// a change the host makes to it, kubelet's way (a new file renamed over the
// old), shows there within seconds; the container cannot write to it.
func TestVirtPodConfigMapUpdate(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	dir := filepath.Join(p.dir, "configmap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"metadata": map[string]any{"name": "reader"},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  sleeper(""),
		"log_path": "reader.log",
		"mounts":   []map[string]any{{"container_path": "/config", "host_path": dir, "readonly": true}},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": p.nsOptions}},
	}
	path := writeJSON(t, filepath.Join(p.dir, "reader.json"), cfg)
	c := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
	p.containers = append(p.containers, c)
	crictl(t, "start", c)
	if got := execSync(t, c, "cat", "/config/key"); got != "v1\n" {
		t.Fatalf("/config/key in the guest: %q, want v1", got)
	}
	if _, stderr, err := bench.Crictl(testCtx(t), "exec", "-s", c, "sh", "-c", "echo x > /config/key"); err == nil {
		t.Errorf("the container wrote to its read-only volume (%s)", stderr)
	}
	tmp := filepath.Join(dir, ".key.tmp")
	if err := os.WriteFile(tmp, []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "key")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var got string
	for deadline := t0.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = execSync(t, c, "cat", "/config/key"); got == "v2\n" {
			break
		}
	}
	if got != "v2\n" {
		t.Fatalf("/config/key in the guest 20 s after the host's update: %q, want v2", got)
	}
	t.Logf("the host's update was seen in the guest after %s", time.Since(t0).Round(100*time.Millisecond))
	crictl(t, "stop", "--timeout", "10", c)
	crictl(t, "rm", c)
}

// TestVirtPodPortForward: `crictl port-forward` reaches servers in a VM
// pod's guest, under both sandboxers, though containerd dials
// localhost:PORT in the pod's network namespace on the host: a server on
// every address (busybox nc), one on the guest's loopback only and one on
// the pod's IP only; a port nobody serves gives a connection closed with
// nothing. While the pod runs its shim holds the steering (a BPF link) and
// is back to its sockets once the forwarded connections end; after stopp
// and rmp no shim of the pod holds a BPF link, and no QEMU or state is
// left.
func TestVirtPodPortForward(t *testing.T) {
	for _, h := range []string{devenv.VirtHandler, devenv.VirtShimHandler} {
		t.Run(h, func(t *testing.T) { portForward(t, h) })
	}
}

func portForward(t *testing.T, handler string) {
	needVirt(t)
	var p *pod
	t.Cleanup(func() {
		if p != nil {
			checkVirtLeft(t, p)
		}
	})
	p = runPod(t, handler, podOpts{})
	ip := podAddr(t, p.inspect(t))
	c := p.start(t, "server", "sh", "-c",
		"mkdir -p /tmp/lo /tmp/pod && echo on-loopback > /tmp/lo/index.html && echo on-pod-ip > /tmp/pod/index.html && "+
			"dd if=/dev/zero of=/tmp/lo/big bs=1M count=16 2>/dev/null && "+
			"httpd -p 127.0.0.1:8081 -h /tmp/lo && httpd -p "+ip.String()+":8082 -h /tmp/pod && "+
			"while true; do echo hello-from-guest | nc -l -p 8080; done")
	shim := shimOfPod(t, p)
	if n := bpfLinks(shim.Pid); n == 0 {
		t.Errorf("the pod's shim (pid %d) holds no BPF link: nothing steers the pod's loopback", shim.Pid)
	}
	sockets := socketFDs(shim.Pid)

	remotes := []int{8080, 8081, 8082, 9}
	locals := make([]int, len(remotes))
	args := []string{"port-forward", p.ID}
	for i, r := range remotes {
		locals[i] = freePort(t)
		args = append(args, fmt.Sprintf("%d:%d", locals[i], r))
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	pf := bench.CrictlCmd(ctx, args...)
	var pfOut bytes.Buffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = pf.Process.Kill() // the crictl this test started
		_ = pf.Wait()
		t.Logf("crictl port-forward said:\n%s", pfOut.String())
	}()

	// nc on every address: the first line of what it serves.
	var got string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		got = readForwarded(locals[0])
		if got == "hello-from-guest\n" {
			break
		}
	}
	if got != "hello-from-guest\n" {
		t.Fatalf("through crictl port-forward %d:8080: %q, want the guest's hello", locals[0], got)
	}
	// httpd on the guest's loopback only, and on the pod's IP only.
	for i, want := range map[int]string{1: "on-loopback\n", 2: "on-pod-ip\n"} {
		if body := httpGetPort(t, locals[i]); body != want {
			t.Errorf("GET through port-forward to guest port %d: %q, want %q", remotes[i], body, want)
		}
	}
	// 16 MiB from the guest's loopback, for the record.
	t0 := time.Now()
	if n := httpGetSize(t, locals[1], "/big"); n != 16<<20 {
		t.Errorf("GET /big through port-forward: %d bytes, want %d", n, 16<<20)
	} else {
		d := time.Since(t0)
		t.Logf("16 MiB through crictl port-forward in %s: %.1f MiB/s", d.Round(time.Millisecond), 16/d.Seconds())
	}
	// Port 9: nothing listens in the guest. The host's side was accepted
	// already (the steering listens on every port), so the refusal comes
	// as a connection closed with nothing read.
	if got := readForwarded(locals[3]); got != "" {
		t.Errorf("through port-forward to guest port 9, where nothing listens: %q, want nothing", got)
	}

	_ = pf.Process.Kill()
	// Every forwarded connection ends with its client: the shim is back
	// to the sockets it had before (the relay's grace is 5 s).
	var now int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if now = socketFDs(shim.Pid); now <= sockets {
			break
		}
	}
	if now > sockets {
		t.Errorf("the shim holds %d sockets after the forwarded connections ended, %d before them", now, sockets)
	}
	t.Logf("the shim's sockets: %d before port-forward, %d after", sockets, now)
	crictl(t, "stop", "--timeout", "10", c)
	crictl(t, "rm", c)
	crictl(t, "stopp", p.ID)
	crictl(t, "rmp", p.ID)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n := bpfLinks(shim.Pid)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the pod's shim (pid %d) still holds %d BPF links after rmp", shim.Pid, n)
			break
		}
	}
}

// bpfLinks counts the BPF links process pid holds (0 once it is gone).
func bpfLinks(pid int) int {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == "anon_inode:bpf_link" {
			n++
		}
	}
	return n
}

// socketFDs counts the sockets process pid holds.
func socketFDs(pid int) int {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// readForwarded connects to 127.0.0.1:port and returns what it reads
// until the first newline or the connection's end, within seconds; ""
// when it cannot connect.
func readForwarded(port int) string {
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(io.LimitReader(c, 1<<10)).ReadString('\n')
	return line
}

// httpGetSize fetches path from 127.0.0.1:port and returns how many bytes
// its body had, -1 on failure.
func httpGetSize(t *testing.T, port int, path string) int64 {
	t.Helper()
	cl := &http.Client{Timeout: 2 * time.Minute}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Logf("GET %s: %v", path, err)
		return -1
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Logf("GET %s: %s, %d bytes, %v", path, resp.Status, n, err)
		return -1
	}
	return n
}

// httpGetPort fetches / from 127.0.0.1:port, retrying while the server
// starts; "" after a bound.
func httpGetPort(t *testing.T, port int) string {
	t.Helper()
	body, err := getRetrying(fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second)
	if err != nil {
		t.Logf("GET 127.0.0.1:%d: %v", port, err)
	}
	return body
}

// TestVirtPodPortForwardShimKilled: the steering of a VM pod's loopback
// belongs to its shim's descriptors, not to the namespace: while the shim
// runs, a connection to any port of the pod namespace's 127.0.0.1 is
// taken (and, with nothing serving it in the guest, closed); once the
// shim is SIGKILLed, the same dial is refused, with the pod's namespace
// still there.
func TestVirtPodPortForwardShimKilled(t *testing.T) {
	p := runVirtPod(t, podOpts{})
	out := crictl(t, "inspectp", "-o", "json", p.ID)
	var info struct {
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string } `json:"namespaces"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	var netns string
	for _, ns := range info.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			netns = ns.Path
		}
	}
	if netns == "" {
		t.Fatalf("no network namespace path in inspectp's runtimeSpec: %s", out)
	}
	c, err := dialInNetns(netns, "127.0.0.1:8080")
	if err != nil {
		t.Fatalf("dialling 127.0.0.1:8080 in the pod's namespace while its shim runs: %v", err)
	}
	c.Close()
	s := shimOfPod(t, p)
	if err := unix.Kill(s.Pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		c, err := dialInNetns(netns, "127.0.0.1:8080")
		if c != nil {
			c.Close()
		}
		if last = err; errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if errors.Is(err, os.ErrNotExist) {
			t.Skipf("the pod's namespace %s went with its shim: nothing to check", netns)
		}
	}
	t.Fatalf("dialling 127.0.0.1:8080 in the pod's namespace after its shim was killed: %v, want connection refused", last)
}

// dialInNetns dials addr over TCP from inside the network namespace at
// path: a goroutine locks its thread, enters the namespace and never
// unlocks it, so that the thread ends with it.
func dialInNetns(path, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the namespace
		f, err := os.Open(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("entering %s: %w", path, err)}
			return
		}
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
