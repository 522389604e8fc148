package agent_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent"
	"github.com/huskrt/husk/agent/client"
)

// init runs the test binary as the holder of a pod's PID namespace when
// the agent starts it so (before TestMain, which knows nothing of it).
func init() {
	if len(os.Args) > 1 && os.Args[1] == agent.PodPIDArg {
		agent.HoldPIDNamespace()
	}
}

// podSpec is b.spec with the namespaces of types in joined given a path,
// as the host marks those its container shares with the pod.
func (b *bench) podSpec(id string, joined []specs.LinuxNamespaceType, args ...string) []byte {
	b.t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(b.spec(false, args...), &s); err != nil {
		b.t.Fatal(err)
	}
	s.Linux.CgroupsPath += "/" + id
	for _, t := range joined {
		found := false
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == t {
				s.Linux.Namespaces[i].Path, found = "pod", true
			}
		}
		if !found {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: "pod"})
		}
		if t == specs.UTSNamespace {
			s.Hostname = "" // the pod's: the CRI sets none on a container that joins it
		}
	}
	out, err := json.Marshal(&s)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// runOutput runs a container to its end and returns its stdout.
func (b *bench) runOutput(id string, spec []byte) string {
	b.t.Helper()
	outID, out := b.stream()
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{ContainerID: id, Spec: spec, Stdio: client.Stdio{Stdout: outID}}); err != nil {
		b.t.Fatalf("create %s: %v", id, err)
	}
	if _, err := b.cl.StartContainer(b.ctx, id); err != nil {
		b.t.Fatalf("start %s: %v", id, err)
	}
	got := readAll(b.t, out)
	if r := b.wait(id, ""); r.ExitStatus != 0 {
		b.t.Errorf("%s exited %d; stdout %q", id, r.ExitStatus, got)
	}
	if err := b.cl.DeleteContainer(b.ctx, id); err != nil {
		b.t.Fatal(err)
	}
	return got
}

// holders are the agent's PID namespace holders (children of this process).
func holders(t *testing.T) []int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		// Field 4 is the parent's pid, after the ")" that ends the name.
		_, rest, _ := strings.Cut(string(st), ") ")
		f := strings.Fields(rest)
		if len(args) > 1 && args[1] == agent.PodPIDArg && len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPodNamespaces: containers that join their pod's IPC and UTS
// namespaces (a path on them, as the host marks a CRI container's) share
// one of each, with the pod's hostname; a container without paths keeps
// its own. Containers that join the pod's PID namespace see each other's
// processes. A path on a namespace the pod does not share is refused.
// DestroySandbox ends the PID namespace's holder and unmounts the others.
func TestPodNamespaces(t *testing.T) {
	b := newBench(t)
	if err := b.cl.CreateSandbox(b.ctx, "pod", "pod-host"); err != nil {
		t.Fatal(err)
	}
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			_ = b.cl.DestroySandbox(context.Background(), "pod")
		}
	})
	shared := []specs.LinuxNamespaceType{specs.IPCNamespace, specs.UTSNamespace}
	probe := []string{"sh", "-c", "hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts"}
	a := b.runOutput("a", b.podSpec("a", shared, probe...))
	c := b.runOutput("c", b.podSpec("c", shared, probe...))
	own := b.runOutput("own", b.podSpec("own", nil, probe...))
	if !strings.HasPrefix(a, "pod-host\nipc:[") {
		t.Errorf("a pod container's hostname and namespaces: %q, want pod-host first", a)
	}
	if a != c {
		t.Errorf("two containers of the pod: %q and %q, want the same namespaces", a, c)
	}
	la, lo := strings.Split(a, "\n"), strings.Split(own, "\n")
	if len(lo) < 3 || lo[0] != "agent-test" || lo[1] == la[1] || lo[2] == la[2] {
		t.Errorf("a container without paths: %q, want its own namespaces and hostname (pod: %q)", own, a)
	}
	host, _ := os.Readlink("/proc/self/ns/ipc")
	if la[1] == host {
		t.Errorf("the pod's IPC namespace is the agent's (%s)", host)
	}

	// The pod's PID namespace: one container sleeps, another sees it.
	pidSpec := b.podSpec("sleeper", []specs.LinuxNamespaceType{specs.PIDNamespace}, "sleep", "1000")
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{ContainerID: "sleeper", Spec: pidSpec}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.cl.StartContainer(b.ctx, "sleeper"); err != nil {
		t.Fatal(err)
	}
	if n := len(holders(t)); n != 1 {
		t.Errorf("%d PID namespace holders, want 1", n)
	}
	ps := b.runOutput("ps", b.podSpec("ps", []specs.LinuxNamespaceType{specs.PIDNamespace}, "ps", "-o", "pid,args"))
	if !strings.Contains(ps, "sleep 1000") || !strings.Contains(ps, agent.PodPIDArg) {
		t.Errorf("ps in the pod's PID namespace:\n%s\nwant the sleeper and the holder", ps)
	}
	if ps := b.runOutput("ps2", b.podSpec("ps2", nil, "ps", "-o", "pid,args")); strings.Contains(ps, "sleep 1000") {
		t.Errorf("ps in a PID namespace of its own sees the pod's:\n%s", ps)
	}

	var s specs.Spec
	_ = json.Unmarshal(b.podSpec("bad", nil, "true"), &s)
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == specs.MountNamespace {
			s.Linux.Namespaces[i].Path = "pod"
		}
	}
	bad, _ := json.Marshal(&s)
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{ContainerID: "bad", Spec: bad}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a container joining the pod's mount namespace: %v, want invalid argument", err)
	}

	destroyed = true
	if err := b.cl.DestroySandbox(b.ctx, "pod"); err != nil {
		t.Fatal(err)
	}
	if n := len(holders(t)); n != 0 {
		t.Errorf("%d PID namespace holders left after DestroySandbox", n)
	}
	if _, err := os.Stat(filepath.Join(b.state, "pod-ns")); !os.IsNotExist(err) {
		t.Errorf("pod namespace directory after DestroySandbox: %v", err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(b.state, "pod-ns")) {
		t.Errorf("a pod namespace is still mounted")
	}
}
