package main

// Issue #11's pod benchmark: a Kubernetes pod's start through the CRI,
// `crictl runp` until its first container runs, and what a running pod
// of one idle container costs the host, for runc and for husk's VM pods
// on the qemu backend (TCG where KVM cannot run a guest, as here). husk's
// own VMM needs a KVM that runs Linux: the nested harness, not this run.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

var (
	podsOnly = flag.Bool("pods-only", false, "measure only the CRI pod rows (pod start to ready, memory per pod)")
	podRuns  = flag.Int("pod-runs", 3, "pods per runtime handler in the CRI pod rows")
)

// podHandlers are the CRI runtime handlers measured, in order.
var podHandlers = []string{"runc", devenv.VirtHandler}

// podsResult is the CRI pod benchmark.
type podsResult struct {
	Runs int `json:"pods_per_handler"`
	// ReadyMs is `crictl runp` + create + start of a busybox container
	// until crictl reports it running, by handler.
	ReadyMs map[string]stats `json:"ready_ms"`
	// PodPSSKiB is the median, over the pods, of the PSS of a pod's host
	// processes: its shim and every process under it (pause and the
	// container's for runc, the VM's process for husk-vm).
	PodPSSKiB map[string]int `json:"pod_processes_pss_kib"`
	// PodCgroupKiB is the median working set `crictl statsp` reports for
	// a pod (its host cgroup: pause and container for runc, the VM's
	// process for husk-vm).
	PodCgroupKiB map[string]int `json:"pod_cgroup_working_set_kib"`
	// Skipped says why nothing was measured, when so.
	Skipped string `json:"skipped,omitempty"`
}

// benchPods runs the CRI pod rows on a CRI bench of its own.
func benchPods(ctx context.Context, dir, tools, shimDir string, runs int) (*podsResult, error) {
	res := &podsResult{Runs: runs, ReadyMs: map[string]stats{}, PodPSSKiB: map[string]int{}, PodCgroupKiB: map[string]int{}}
	root, err := devenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	guest := filepath.Join(root, ".tools", "guest")
	if _, err := guestimage.Load(guest); err != nil {
		res.Skipped = fmt.Sprintf("no guest image (make guest): %v", err)
		return res, nil
	}
	if _, err := os.Stat("/usr/bin/qemu-system-x86_64"); err != nil {
		res.Skipped = fmt.Sprintf("no QEMU: %v", err)
		return res, nil
	}
	c, err := devenv.Start(ctx, devenv.Options{Dir: filepath.Join(dir, "cri"), ToolsBin: tools, ShimDir: shimDir,
		LogLevel: "warn", CRI: true, VirtGuestImage: guest})
	if err != nil {
		return nil, err
	}
	defer c.Stop(context.WithoutCancel(ctx))
	if err := c.ImportBusyboxInto(ctx, devenv.CRINamespace, devenv.BusyboxRef); err != nil {
		return nil, err
	}
	for _, h := range podHandlers {
		if err := measurePods(ctx, c, dir, h, runs, res); err != nil {
			return nil, fmt.Errorf("pods on %s: %w", h, err)
		}
	}
	return res, nil
}

// benchPod is one pod of the benchmark.
type benchPod struct {
	name, id, config, parent string
}

// measurePods starts runs pods of handler one after another, each to its
// container running, then reads the host's memory and the pods' stats,
// and removes them.
func measurePods(ctx context.Context, c *devenv.Containerd, dir, handler string, runs int, res *podsResult) error {
	crictl := func(args ...string) (string, error) {
		out, _, err := c.Crictl(ctx, args...)
		return strings.TrimSpace(out), err
	}
	var pods []*benchPod
	defer func() {
		for _, p := range pods {
			if p.id != "" {
				_, _ = crictl("stopp", p.id)
				_, _ = crictl("rmp", "--force", p.id)
			}
			removeCgroupTree(p.parent)
		}
	}()
	var times []float64
	for i := 0; i < runs; i++ {
		p, err := writePod(dir, handler, i)
		if err != nil {
			return err
		}
		pods = append(pods, p)
		t0 := time.Now()
		if p.id, err = crictl("runp", "--runtime", handler, p.config); err != nil {
			return err
		}
		ctrConfig := filepath.Join(filepath.Dir(p.config), "c.json")
		cid, err := crictl("create", "--no-pull", p.id, ctrConfig, p.config)
		if err != nil {
			return err
		}
		if _, err := crictl("start", cid); err != nil {
			return err
		}
		for {
			st, err := crictl("inspect", "-o", "go-template", "--template", "{{.status.state}}", cid)
			if err != nil {
				return err
			}
			if st == "CONTAINER_RUNNING" {
				break
			}
			if time.Since(t0) > 5*time.Minute {
				return fmt.Errorf("container of pod %s not running after 5 minutes (%s)", p.name, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
	}
	settle()
	res.ReadyMs[handler] = summarize(times)
	var sets, psss []float64
	for _, p := range pods {
		shim, err := shimPid(p.id)
		if err != nil {
			return err
		}
		psss = append(psss, float64(treePSSKiB(shim)))
		out, err := crictl("statsp", "-o", "json", "--id", p.id)
		if err != nil {
			return err
		}
		var st struct {
			Stats []struct {
				Linux struct {
					Memory struct {
						WorkingSetBytes struct{ Value string } `json:"workingSetBytes"`
					} `json:"memory"`
				} `json:"linux"`
			} `json:"stats"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Stats) != 1 {
			return fmt.Errorf("statsp of %s: %v: %.200s", p.name, err, out)
		}
		n, _ := strconv.ParseFloat(st.Stats[0].Linux.Memory.WorkingSetBytes.Value, 64)
		sets = append(sets, n/1024)
	}
	res.PodCgroupKiB[handler] = int(summarize(sets).Median)
	res.PodPSSKiB[handler] = int(summarize(psss).Median)
	return nil
}

// treePSSKiB sums the PSS of process pid and all its descendants.
func treePSSKiB(pid int) int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// The parent is the second field after the ")" that ends the
		// name, which may itself hold spaces and parentheses: the last one.
		end := strings.LastIndexByte(string(b), ')')
		if end < 0 {
			continue
		}
		fs := strings.Fields(string(b[end+1:]))
		if len(fs) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fs[1])
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		children[ppid] = append(children[ppid], child)
	}
	total := 0
	for todo := []int{pid}; len(todo) > 0; {
		p := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[p]...)
		total += readMem(p).PSSKiB
	}
	return total
}

// writePod writes the configurations of pod i of handler and its
// container (busybox sleeping), as kubelet would send them.
func writePod(dir, handler string, i int) (*benchPod, error) {
	name := fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(handler, "-", ""), i)
	pd := filepath.Join(dir, "pods", name)
	if err := os.MkdirAll(filepath.Join(pd, "logs"), 0o755); err != nil {
		return nil, err
	}
	p := &benchPod{name: name, parent: "/husk-bench/" + name}
	ns := map[string]any{"network": 0, "pid": 1, "ipc": 0}
	pod := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "husk-bench", "uid": fmt.Sprintf("uid-%s-%d", name, time.Now().UnixNano())},
		"hostname":      name,
		"log_directory": filepath.Join(pd, "logs"),
		"linux": map[string]any{
			"cgroup_parent":    p.parent,
			"security_context": map[string]any{"namespace_options": ns},
		},
	}
	ctr := map[string]any{
		"metadata": map[string]any{"name": "idle"},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  []string{"sleep", "3600"},
		"log_path": "idle.log",
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": ns}},
	}
	for file, v := range map[string]any{"pod.json": pod, "c.json": ctr} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(pd, file), b, 0o644); err != nil {
			return nil, err
		}
	}
	p.config = filepath.Join(pd, "pod.json")
	return p, nil
}

// removeCgroupTree removes a pod's cgroup_parent (and its empty children)
// from every hierarchy, as kubelet does once the pod is gone; then
// /husk-bench when it is empty.
func removeCgroupTree(parent string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		dir := filepath.Join(r, parent)
		var dirs []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
		_ = os.Remove(filepath.Join(r, "husk-bench"))
	}
}

// settle gives the host a moment after pods start or stop.
func settle() { time.Sleep(3 * time.Second) }

// printPodsTable prints the CRI pod rows.
func printPodsTable(r *podsResult) {
	if r == nil {
		return
	}
	fmt.Println()
	if r.Skipped != "" {
		fmt.Printf("CRI pod rows not measured: %s\n", r.Skipped)
		return
	}
	rc, vm := r.ReadyMs["runc"], r.ReadyMs[devenv.VirtHandler]
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	fmt.Printf("CRI pods (%d per handler, one after another, each with one idle busybox container); husk's VMM: not on this host (no KVM that runs Linux).\n\n", r.Runs)
	fmt.Println("| what | runc | husk VM pod, qemu | qemu/runc |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| `crictl runp` + create + start to running, median (p90) | %.0f ms (%.0f) | %.0f ms (%.0f) | %.1f |\n",
		rc.Median, rc.P90, vm.Median, vm.P90, vm.Median/rc.Median)
	fmt.Printf("| PSS of a pod's host processes (shim and all under it), median | %.1f MiB | %.1f MiB | %.1f |\n",
		mib(r.PodPSSKiB["runc"]), mib(r.PodPSSKiB[devenv.VirtHandler]),
		float64(r.PodPSSKiB[devenv.VirtHandler])/float64(max(r.PodPSSKiB["runc"], 1)))
	fmt.Printf("| pod cgroup working set (`crictl statsp`), median | %.1f MiB | %.1f MiB | %.1f |\n",
		mib(r.PodCgroupKiB["runc"]), mib(r.PodCgroupKiB[devenv.VirtHandler]),
		float64(r.PodCgroupKiB[devenv.VirtHandler])/float64(max(r.PodCgroupKiB["runc"], 1)))
}
