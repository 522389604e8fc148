package cri

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/test/devenv"
)

// TestVirtPodShimSandboxer runs a VM pod under containerd's sandbox API
// (the runtime handler's sandboxer = "shim"): the CRI makes the pod's
// network namespace and asks husk's shim to create and start the pod
// itself, with no pause container and no pause image; husk boots the VM
// in CreateSandbox. The pod then works as under podsandbox: its state and
// pid through inspectp, two containers sharing the VM and the pod's
// address, exec, the pod's hostname and resolv.conf (the shim writes them
// under this sandboxer), a server reached from the host at the pod's IP,
// logs, a containerd restart; after stopp and rmp no QEMU, no state and
// nothing of the pod's is left.
func TestVirtPodShimSandboxer(t *testing.T) {
	needVirt(t)
	var p *pod
	t.Cleanup(func() {
		if p != nil {
			checkVirtLeft(t, p)
		}
	})
	p = runPod(t, devenv.VirtShimHandler, podOpts{})

	sb := p.inspect(t)
	if sb.Status.State != "SANDBOX_READY" || sb.Status.RuntimeHandler != devenv.VirtShimHandler {
		t.Fatalf("pod %s on handler %q, want SANDBOX_READY on %s", sb.Status.State, sb.Status.RuntimeHandler, devenv.VirtShimHandler)
	}
	vms := qemuOf(p.ID)
	if len(vms) != 1 {
		t.Fatalf("QEMU processes of the pod: %v, want one (booted by CreateSandbox)", vms)
	}
	if sb.Info.Pid != vms[0] {
		t.Errorf("inspectp pid %d, want the VM's process %d", sb.Info.Pid, vms[0])
	}
	// No pause container: containerd holds no container of the pod's id.
	if out, _, err := bench.CtrIn(testCtx(t), devenv.CRINamespace, "containers", "ls", "-q"); err != nil {
		t.Errorf("ctr containers ls: %v", err)
	} else if strings.Contains(out, p.ID) {
		t.Errorf("containerd has a container of the pod's id %.13s (a pause container): %s", p.ID, out)
	}
	podIP := podAddr(t, sb)
	// The VM's console (kernel and agent) is kept in its state directory.
	console := filepath.Join(persist.Dir(devenv.VirtStateDir(bench.Dir), devenv.CRINamespace, p.ID), "virt", "console.log")
	if b, err := os.ReadFile(console); err != nil || !strings.Contains(string(b), "component=husk-agent") {
		t.Errorf("the VM's console %s: %v, want the agent's log in it:\n%s", console, err, b)
	}

	c1 := p.start(t, "sleeper", sleeper("")...)
	c2 := p.start(t, "talker", sleeper("echo hello from talker; ")...)
	if vms := qemuOf(p.ID); len(vms) != 1 {
		t.Errorf("QEMU processes of the pod with two containers: %v, want the one", vms)
	}
	if out := execSync(t, c1, "echo", "hi"); out != "hi\n" {
		t.Errorf("exec -s echo hi: %q", out)
	}
	if out := crictl(t, "exec", c2, "echo", "streamed"); out != "streamed\n" {
		t.Errorf("exec echo streamed: %q", out)
	}
	inet := regexp.MustCompile(`inet ([0-9.]+)/`)
	for _, c := range []string{c1, c2} {
		out := execSync(t, c, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if m := inet.FindStringSubmatch(out); m == nil || m[1] != podIP.String() {
			t.Errorf("container %.13s: eth0 %q, want %s", c, strings.TrimSpace(out), podIP)
		}
		if h := strings.TrimSpace(execSync(t, c, "cat", "/etc/hostname")); h != p.Hostname {
			t.Errorf("container %.13s: /etc/hostname %q, want the pod's %q", c, h, p.Hostname)
		}
		if h := strings.TrimSpace(execSync(t, c, "hostname")); h != p.Hostname {
			t.Errorf("container %.13s: hostname %q, want the pod's %q", c, h, p.Hostname)
		}
	}
	// The pod has no DNS config: its resolv.conf is the host's.
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		if got := execSync(t, c1, "cat", "/etc/resolv.conf"); got != string(host) {
			t.Errorf("the container's resolv.conf %q, want the host's %q", got, host)
		}
	}
	serve(t, c1, "shim sandboxer")
	if got := httpGet(t, podIP); got != "shim sandboxer\n" {
		t.Errorf("the host got %q from the pod's server at %s", got, podIP)
	}
	if logs := waitForLog(t, c2, "hello from talker"); logs != "hello from talker\n" {
		t.Errorf("crictl logs talker: %q", logs)
	}

	// containerd restarts: it finds the sandbox's shim again by its
	// bootstrap record, and the pod, its VM and its containers carry on.
	survivesContainerdRestart(t, p, c1, vms[0])

	crictl(t, "stop", "--timeout", "10", c1, c2)
	crictl(t, "rm", c1, c2)
	crictl(t, "stopp", p.ID)
	if st := p.inspect(t).Status.State; st != "SANDBOX_NOTREADY" {
		t.Errorf("pod state after stopp: %s, want SANDBOX_NOTREADY", st)
	}
	crictl(t, "rmp", p.ID)
	// The cleanups check that nothing of the pod is left.
}

// TestVirtPodShimSandboxerShimKilled: under sandboxer shim, a pod whose
// shim is SIGKILLed loses its container; containerd's cleanup (the shim
// binary's delete in each bundle) ends the VM, and the pod's removal
// leaves nothing.
func TestVirtPodShimSandboxerShimKilled(t *testing.T) {
	needVirt(t)
	var p *pod
	t.Cleanup(func() {
		if p != nil {
			checkVirtLeft(t, p)
		}
	})
	p = runPod(t, devenv.VirtShimHandler, podOpts{})
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
	if st := p.inspect(t).Status.State; st != "SANDBOX_NOTREADY" {
		t.Errorf("pod after its shim was killed: %s, want SANDBOX_NOTREADY", st)
	}
	p.remove(t)
}
