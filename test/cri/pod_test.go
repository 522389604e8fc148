package cri

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/test/devenv"
)

// CRI NamespaceMode values (k8s.io/cri-api runtime.v1).
const (
	nsPod       = 0
	nsContainer = 1
)

// cgroupRoot is the cgroup (below each hierarchy's root) the test pods'
// cgroup_parent lives in, as kubelet's /kubepods does.
const cgroupRoot = "husk-cri"

// pod is a pod sandbox run by a test.
type pod struct {
	ID, Name, Handler string
	// Hostname is the pod's hostname; CgroupParent its cgroup_parent.
	Hostname, CgroupParent string
	// dir holds the pod's and its containers' configurations; LogDir the
	// logs (log_directory).
	dir, LogDir string
	config      string // the pod config file crictl create needs
	// nsOptions are the pod's namespace_options, which kubelet repeats in
	// every container's security context (a container without them would
	// join the pause process's PID namespace).
	nsOptions  map[string]any
	containers []string
}

// podOpts are the few knobs the tests turn.
type podOpts struct {
	// sharePID puts the pod's containers in one PID namespace, where the
	// pause process is PID 1 (shareProcessNamespace).
	sharePID bool
	// resources are the pod's linux.resources (kubelet sends the pod's
	// total), which the CRI turns into sandbox sizing annotations.
	resources map[string]any
	// suffix tells apart the pods of one test.
	suffix string
}

// runPod runs a pod sandbox with handler (`crictl runp --runtime`) and
// arranges for it to be removed when the test ends, then for the bench to
// be checked for anything the pod left behind.
func runPod(t *testing.T, handler string, o podOpts) *pod {
	t.Helper()
	p := newPod(t, handler, o)
	t.Cleanup(func() { p.remove(t) })
	t0 := time.Now()
	p.ID = strings.TrimSpace(crictl(t, "runp", "--runtime", handler, p.config))
	t.Logf("crictl runp (%s) took %s: pod %.13s", handler, time.Since(t0).Round(time.Millisecond), p.ID)
	return p
}

// newPod writes the configuration of a pod runPod would run, and runs
// nothing.
func newPod(t *testing.T, handler string, o podOpts) *pod {
	t.Helper()
	needBench(t)
	p := &pod{
		Name:    name(t, "pod"+o.suffix),
		Handler: handler,
		dir:     t.TempDir(),
	}
	p.Hostname = p.Name
	if len(p.Hostname) > 63 {
		p.Hostname = p.Hostname[:63]
	}
	p.CgroupParent = "/" + cgroupRoot + "/" + p.Name
	p.LogDir = filepath.Join(p.dir, "logs")
	pid := nsContainer
	if o.sharePID {
		pid = nsPod
	}
	p.nsOptions = map[string]any{"network": nsPod, "pid": pid, "ipc": nsPod}
	// What kubelet sends for a plain pod, minus what this bench has no use
	// for (DNS config, port mappings): the defaults of a pod's security
	// context.
	cfg := map[string]any{
		"metadata": map[string]any{
			"name":      p.Name,
			"namespace": "husk-cri",
			"uid":       fmt.Sprintf("uid-%s-%d", p.Name, time.Now().UnixNano()),
			"attempt":   0,
		},
		"hostname":      p.Hostname,
		"log_directory": p.LogDir,
		"labels":        map[string]string{"husk.test": "cri"},
		"linux": map[string]any{
			"cgroup_parent": p.CgroupParent,
			"security_context": map[string]any{
				"namespace_options": p.nsOptions,
			},
		},
	}
	if o.resources != nil {
		cfg["linux"].(map[string]any)["resources"] = o.resources
	}
	p.config = writeJSON(t, filepath.Join(p.dir, "pod.json"), cfg)
	return p
}

// start creates and starts a busybox container running cmd in the pod and
// returns its id.
func (p *pod) start(t *testing.T, name string, cmd ...string) string {
	t.Helper()
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  cmd,
		"log_path": name + ".log",
		"linux": map[string]any{
			"security_context": map[string]any{"namespace_options": p.nsOptions},
		},
	}
	path := writeJSON(t, filepath.Join(p.dir, name+".json"), cfg)
	id := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
	p.containers = append(p.containers, id)
	crictl(t, "start", id)
	return id
}

// remove stops and removes the pod however the test ended (nothing to do
// when the test removed it), removes its cgroup_parent as kubelet would, and
// then fails the test for anything the pod left behind.
func (p *pod) remove(t *testing.T) {
	if p.ID == "" {
		return
	}
	ctx := testCtx(t)
	if out, _, _ := bench.Crictl(ctx, "pods", "-q", "--id", p.ID); strings.TrimSpace(out) != "" {
		if _, _, err := bench.Crictl(ctx, "stopp", p.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if _, _, err := bench.Crictl(ctx, "rmp", "--force", p.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	checkNothingLeft(t, p)
}

// inspectp is what the tests read of `crictl inspectp -o json`.
type inspectp struct {
	Status struct {
		ID      string              `json:"id"`
		State   string              `json:"state"`
		Network struct{ IP string } `json:"network"`
		Linux   struct {
			Namespaces struct {
				Options struct {
					Network, Pid, Ipc string
				} `json:"options"`
			} `json:"namespaces"`
		} `json:"linux"`
		RuntimeHandler string `json:"runtimeHandler"`
	} `json:"status"`
	Info struct {
		Pid         int    `json:"pid"`
		RuntimeType string `json:"runtimeType"`
	} `json:"info"`
}

func (p *pod) inspect(t *testing.T) inspectp {
	t.Helper()
	var v inspectp
	if err := json.Unmarshal([]byte(crictl(t, "inspectp", "-o", "json", p.ID)), &v); err != nil {
		t.Fatalf("inspectp: %v", err)
	}
	return v
}

// inspect is what the tests read of `crictl inspect -o json`.
type inspect struct {
	Status struct {
		State    string `json:"state"`
		ExitCode int    `json:"exitCode"`
		LogPath  string `json:"logPath"`
	} `json:"status"`
	Info struct {
		Pid int `json:"pid"`
	} `json:"info"`
}

func inspectContainer(t *testing.T, id string) inspect {
	t.Helper()
	var v inspect
	if err := json.Unmarshal([]byte(crictl(t, "inspect", "-o", "json", id)), &v); err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return v
}

// execSync runs cmd in container id through ExecSync (`crictl exec -s`)
// and returns its output; a non-zero exit fails the test. crictl prints the
// command's stdout and then its stderr, each followed by a newline; with
// nothing on stderr, that is stdout and "\n\n", which execSync removes.
func execSync(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	out := crictl(t, append([]string{"exec", "-s", id}, cmd...)...)
	return strings.TrimSuffix(out, "\n\n")
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkNothingLeft fails t for anything of p, or of any pod, still on the
// bench or the host: pods, containers and tasks, shims, mounts under the
// bench or naming the pod, network namespaces (the bench's and
// /var/run/netns), CNI state (addresses, cached results, bridge ports),
// husk's state dir and the pod's cgroups. Tests run one at a time, so any
// pod at all is a leak.
func checkNothingLeft(t *testing.T, p *pod) {
	t.Helper()
	ctx := testCtx(t)
	if out, _, err := bench.Crictl(ctx, "pods", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("pods left: %q (%v)", out, err)
	}
	if out, _, err := bench.Crictl(ctx, "ps", "-a", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q (%v)", out, err)
	}
	if out, _, err := bench.CtrIn(ctx, devenv.CRINamespace, "tasks", "ls", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("tasks left in %s: %q (%v)", devenv.CRINamespace, out, err)
	}
	// Shims exit on their own once their last task is deleted: give them a
	// moment.
	var shims []Shim
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if shims, err = Shims(bench.Address()); err != nil {
			t.Error(err)
		}
		if len(shims) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(shims) > 0 {
		t.Errorf("shims left: %+v", shims)
	}
	if m, err := bench.Mounts(); err != nil || len(m) > 0 {
		t.Errorf("mounts left under the bench: %v (%v)", m, err)
	}
	if m := mountsNaming(append([]string{p.ID}, p.containers...)); len(m) > 0 {
		t.Errorf("mounts left naming the pod or its containers: %v", m)
	}
	if ns := listDir(bench.NetNSDir()); len(ns) > 0 {
		t.Errorf("network namespaces left in %s: %v", bench.NetNSDir(), ns)
	}
	// Only the CRI's names (cni-<uuid>) are the bench's to leave: other
	// packages' tests, run at the same time by go test ./..., make
	// namespaces of their own there.
	for _, ns := range listDir("/var/run/netns") {
		if strings.HasPrefix(ns, "cni-") && !slices.Contains(hostNetns, ns) {
			t.Errorf("network namespace /var/run/netns/%s appeared (the bench mounts its pods' under %s)", ns, bench.NetNSDir())
		}
	}
	n := bench.CNI()
	for _, f := range listDir(filepath.Join(n.DataDir, n.Name)) {
		if f != "lock" && !strings.HasPrefix(f, "last_reserved_ip") {
			t.Errorf("host-local still holds address %s", f)
		}
	}
	for _, f := range listDir("/var/lib/cni/results") {
		if strings.Contains(f, p.ID) {
			t.Errorf("CNI result left: /var/lib/cni/results/%s", f)
		}
	}
	if ports := listDir(filepath.Join("/sys/class/net", n.Bridge, "brif")); len(ports) > 0 {
		t.Errorf("ports left on bridge %s: %v", n.Bridge, ports)
	}
	if dir := persist.Dir(config.Default().Runtime.StateDir, devenv.CRINamespace, p.ID); exists(dir) {
		t.Errorf("husk's sandbox state %s left", dir)
	}
	removeCgroup(t, p.CgroupParent)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// mountsNaming returns the mount points of this mount namespace whose path
// contains one of ids.
func mountsNaming(ids []string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		for _, id := range ids {
			if id != "" && strings.Contains(fields[4], id) {
				out = append(out, fields[4])
			}
		}
	}
	return out
}

// cgroupMounts returns the mount points of the cgroup hierarchies (v1
// controllers and the v2 unified tree alike).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mountpoint ... - fstype source options
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				out = append(out, fields[4])
			}
		}
	}
	return out, sc.Err()
}

// removeCgroup removes the pod's cgroup_parent from every hierarchy, as
// kubelet does once the pod is gone, failing t when containers' cgroups are
// still in it; then cgroupRoot, when no other pod uses it.
func removeCgroup(t *testing.T, parent string) {
	t.Helper()
	mounts, err := cgroupMounts()
	if err != nil {
		t.Error(err)
		return
	}
	for _, m := range mounts {
		dir := filepath.Join(m, parent)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Error(err)
			continue
		}
		children := false
		for _, e := range ents {
			if e.IsDir() && !children {
				// What the shim said when it released its pod cgroup.
				if b, err := os.ReadFile(bench.LogPath()); err == nil {
					for _, l := range strings.Split(string(b), "\n") {
						if strings.Contains(l, "pod cgroup") {
							t.Log(l)
						}
					}
				}
			}
			if e.IsDir() {
				procs, _ := os.ReadFile(filepath.Join(dir, e.Name(), "cgroup.procs"))
				t.Errorf("cgroup left: %s (processes: %q)", filepath.Join(dir, e.Name()), strings.TrimSpace(string(procs)))
				children = true
			}
		}
		if children {
			continue
		}
		// cgroupfs refuses rmdir while processes or children remain; a
		// process may take a moment to leave after its task is deleted.
		for i := 0; ; i++ {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if i == 50 {
				t.Errorf("remove cgroup %s: %v", dir, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = os.Remove(filepath.Join(m, cgroupRoot))
	}
}
