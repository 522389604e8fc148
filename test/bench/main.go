// Command bench measures husk against containerd's runc shim in one run
// (shared/TARGETS.md P1, P2): the same private containerd, the same rootfs,
// interleaved runs. It reports; it never fails on a number. Results go to
// bench/results/<date>-linux.json and a markdown table on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

const (
	huskRT = "io.containerd.husk.v2"
	runcRT = "io.containerd.runc.v2"
)

type result struct {
	Date    string                 `json:"date"`
	Machine string                 `json:"machine"`
	Runs    int                    `json:"runs"`
	P1      map[string]stats       `json:"p1_ctr_run_rm_true_ms"`
	Density map[string]densityInfo `json:"p2_p11_pod_density"`
	Wasm    *wasmResult            `json:"wasm,omitempty"`
	VMM     *vmmResult             `json:"vmm,omitempty"`
	Hooks   *hooksResult           `json:"hooks,omitempty"`
	Pods    *podsResult            `json:"cri_pods,omitempty"`
	P11     *p11Result             `json:"p11_250_pods,omitempty"`
	Targets []targetRow            `json:"targets"` // targets.go, from the above
}

type densityInfo struct {
	Shim1      memInfo `json:"shim_one_container"`
	Pods10     memInfo `json:"shim_mean_of_ten_pods"`
	Shim10     memInfo `json:"shim_ten_containers"`
	Shim100    memInfo `json:"shim_hundred_containers"`
	Running    int     `json:"running_of_100"`
	HostKiBPer int     `json:"host_memory_kib_per_container"`
	StartSecs  float64 `json:"seconds_to_start_100"`
}

type stats struct {
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
}

type memInfo struct {
	RSSKiB int `json:"rss_kib"`
	PSSKiB int `json:"pss_kib"`
}

func main() {
	tools := flag.String("tools", "", "dir with containerd, ctr, containerd-shim-runc-v2 (default <repo>/.tools/bin)")
	shimDir := flag.String("shim-dir", "", "dir with containerd-shim-husk-v2 (default <repo>/bin)")
	runs := flag.Int("runs", 30, "runs per runtime for P1")
	flag.Parse()
	if err := run(*tools, *shimDir, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(tools, shimDir string, runs int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hbench")
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := devenv.BusyboxRootfs(rootfs); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *podsOnly { // the CRI pod rows alone (pods.go)
		pods, err := benchPods(ctx, dir, tools, shimDir, *podRuns)
		printPodsTable(pods)
		return err
	}
	c, err := devenv.Start(ctx, devenv.Options{Dir: filepath.Join(dir, "c"), ToolsBin: tools, ShimDir: shimDir, LogLevel: "warn"})
	if err != nil {
		return err
	}
	defer c.Stop(context.Background())

	res := result{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Runs: runs,
		P1: map[string]stats{}, Density: map[string]densityInfo{}}
	if *hooksOnly { // P5 and P6 alone (hooks.go)
		res.Hooks, err = benchHooks(ctx, c, dir, rootfs, runs)
		printHooksTable(res.Hooks)
		return err
	}
	if *densityOnly { // P2 and P11's shim rows alone (density.go)
		return densityAlone(ctx, c, rootfs, &res)
	}

	if *p11Only { // P11's 250 pods alone (pods250.go)
		res.P11 = benchP11(ctx, c, rootfs)
		printP11Table(res.P11)
		printTargets(targetRows(res))
		return nil
	}

	// P1: ctr run --rm of /bin/true, interleaved so drift hits both alike.
	times := map[string][]float64{}
	rts := []string{runcRT, huskRT}
	for i := -3; i < runs; i++ { // three warm-up rounds
		if i%2 != 0 {
			slices.Reverse(rts)
		}
		for _, rt := range rts {
			id := fmt.Sprintf("p1-%s-%d", short(rt), i+3)
			t0 := time.Now()
			if _, stderr, err := c.Ctr(ctx, "run", "--rm", "--runtime", rt, "--rootfs", rootfs, id, "/bin/true"); err != nil {
				return fmt.Errorf("P1 %s: %v: %s", rt, err, stderr)
			}
			if i >= 0 {
				times[rt] = append(times[rt], float64(time.Since(t0).Microseconds())/1000)
			}
		}
	}
	for rt, ts := range times {
		res.P1[short(rt)] = summarize(ts)
	}

	// P2 and P11: one pod per runtime (the CRI's annotations group a pod
	// into one shim for both), grown to 1, 10 and 100 idle containers.
	for _, rt := range []string{runcRT, huskRT} {
		d, err := density(ctx, c, rt, rootfs)
		if err != nil {
			return err
		}
		res.Density[short(rt)] = d
	}

	res.P11 = benchP11(ctx, c, rootfs) // 250 pods, a shim each (pods250.go)

	if res.Wasm, err = benchWasm(ctx, c, dir, tools, runs); err != nil {
		return err
	}
	if res.Hooks, err = benchHooks(ctx, c, dir, rootfs, runs); err != nil {
		return err
	}
	res.VMM = benchVMM(ctx) // P7, P8, P9, P10, P12 (vmm.go, p12.go); reports what it could not measure
	if res.Pods, err = benchPods(ctx, dir, tools, shimDir, *podRuns); err != nil {
		return err
	}
	res.Targets = targetRows(res)
	if err := save(res); err != nil {
		return err
	}
	printTable(res)
	printWasmTable(res.Wasm)
	printVMMTable(res.VMM)
	printHooksTable(res.Hooks)
	printPodsTable(res.Pods)
	printP11Table(res.P11)
	printTargets(res.Targets)
	return nil
}

func short(rt string) string {
	if rt == huskRT {
		return "husk"
	}
	return "runc"
}

func summarize(ts []float64) stats {
	s := slices.Clone(ts)
	slices.Sort(s)
	return stats{Median: s[len(s)/2], P90: s[len(s)*9/10], Min: s[0]}
}

// killTask SIGKILLs the task of container id, if it has one.
func killTask(ctx context.Context, c *devenv.Containerd, id string) {
	_, _, _ = c.Ctr(ctx, "task", "kill", "-s", "SIGKILL", id)
}

// removeContainer deletes container id's task, retrying for up to 2 s
// while it is still exiting, then the container.
func removeContainer(ctx context.Context, c *devenv.Containerd, id string) {
	for i := 0; i < 100; i++ {
		if _, _, err := c.Ctr(ctx, "task", "delete", id); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _, _ = c.Ctr(ctx, "container", "delete", id)
}

// shimPid finds the shim process serving container id.
func shimPid(id string) (int, error) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.Contains(args[0], "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id {
				return strconv.Atoi(strings.Split(p, "/")[2])
			}
		}
	}
	return 0, fmt.Errorf("no shim process serves %s", id)
}

func readMem(pid int) memInfo {
	var m memInfo
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				switch f[0] {
				case "Rss:":
					m.RSSKiB = n
				case "Pss:":
					m.PSSKiB = n
				}
			}
		}
	}
	return m
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d CPUs, %s/%s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

func save(r result) error {
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "bench", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, time.Now().UTC().Format("2006-01-02T150405")+"-linux.json")
	fmt.Fprintln(os.Stderr, "results:", name)
	return os.WriteFile(name, append(b, '\n'), 0o644)
}

func printTable(r result) {
	h, rc := r.P1["husk"], r.P1["runc"]
	hd, rd := r.Density["husk"], r.Density["runc"]
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	ratio := func(a, b int) float64 { return float64(a) / float64(b) }
	extra := func(d densityInfo) int { return (d.Shim10.RSSKiB - d.Shim1.RSSKiB) / 9 }
	fmt.Printf("Measured %s on %s (%d interleaved runs each for P1).\n\n", r.Date, r.Machine, r.Runs)
	fmt.Println("| id | what | runc shim | husk | husk/runc | target |")
	fmt.Println("|---|---|---|---|---|---|")
	if len(r.P1) > 0 { // -density-only measures no P1
		fmt.Printf("| P1 | `ctr run --rm --rootfs busybox /bin/true`, median (p90) | %.1f ms (%.1f) | %.1f ms (%.1f) | %.2f | ≤ 0.8 |\n",
			rc.Median, rc.P90, h.Median, h.P90, h.Median/rc.Median)
	}
	fmt.Printf("| P2 | shim RSS, pod with one idle container | %.1f MiB | %.1f MiB | %.2f | ≤ 1 |\n",
		mib(rd.Shim1.RSSKiB), mib(hd.Shim1.RSSKiB), ratio(hd.Shim1.RSSKiB, rd.Shim1.RSSKiB))
	fmt.Printf("| P2 | shim PSS (RSS), each of 10 single-container pods running | %.1f MiB (%.1f) | %.1f MiB (%.1f) | %.2f (%.2f) | ≤ 1 |\n",
		mib(rd.Pods10.PSSKiB), mib(rd.Pods10.RSSKiB), mib(hd.Pods10.PSSKiB), mib(hd.Pods10.RSSKiB),
		ratio(hd.Pods10.PSSKiB, max(rd.Pods10.PSSKiB, 1)), ratio(hd.Pods10.RSSKiB, max(rd.Pods10.RSSKiB, 1)))
	fmt.Printf("| P2 | shim RSS per extra container (1 → 10 in the pod) | %.2f MiB | %.2f MiB | %.2f | ≤ 1 MiB |\n",
		mib(extra(rd)), mib(extra(hd)), ratio(extra(hd), max(extra(rd), 1)))
	fmt.Printf("| P11 | 100 idle containers in one pod: running | %d | %d | — | all |\n", rd.Running, hd.Running)
	fmt.Printf("| P11 | shim RSS with 100 containers | %.1f MiB | %.1f MiB | %.2f | — |\n",
		mib(rd.Shim100.RSSKiB), mib(hd.Shim100.RSSKiB), ratio(hd.Shim100.RSSKiB, rd.Shim100.RSSKiB))
	fmt.Printf("| P11 | host memory per container (MemAvailable drop / 100) | %.2f MiB | %.2f MiB | %.2f | reported |\n",
		mib(rd.HostKiBPer), mib(hd.HostKiBPer), ratio(hd.HostKiBPer, max(rd.HostKiBPer, 1)))
	fmt.Printf("| P11 | time to start 100 containers one after another | %.1f s | %.1f s | %.2f | — |\n",
		rd.StartSecs, hd.StartSecs, hd.StartSecs/rd.StartSecs)
}
