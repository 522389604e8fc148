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
	Date    string             `json:"date"`
	Machine string             `json:"machine"`
	Runs    int                `json:"runs"`
	P1      map[string]stats   `json:"p1_ctr_run_rm_true_ms"`
	P2      map[string]memInfo `json:"p2_shim_memory_one_idle_container"`
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
	c, err := devenv.Start(ctx, devenv.Options{Dir: filepath.Join(dir, "c"), ToolsBin: tools, ShimDir: shimDir, LogLevel: "warn"})
	if err != nil {
		return err
	}
	defer c.Stop(context.Background())

	res := result{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Runs: runs,
		P1: map[string]stats{}, P2: map[string]memInfo{}}

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

	// P2: memory of the shim serving one idle container.
	for _, rt := range []string{runcRT, huskRT} {
		id := "p2-" + short(rt)
		if _, stderr, err := c.Ctr(ctx, "run", "-d", "--runtime", rt, "--rootfs", rootfs, id, "/bin/sleep", "1000"); err != nil {
			return fmt.Errorf("P2 %s: %v: %s", rt, err, stderr)
		}
		time.Sleep(2 * time.Second) // let the shim settle after start-up
		pid, err := shimPid(id)
		if err != nil {
			return err
		}
		res.P2[short(rt)] = readMem(pid)
		_, _, _ = c.Ctr(ctx, "task", "kill", "-s", "SIGKILL", id)
		time.Sleep(300 * time.Millisecond)
		_, _, _ = c.Ctr(ctx, "task", "delete", id)
		_, _, _ = c.Ctr(ctx, "container", "delete", id)
	}

	if err := save(res); err != nil {
		return err
	}
	printTable(res)
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
	hm, rm := r.P2["husk"], r.P2["runc"]
	fmt.Printf("Measured %s on %s (%d interleaved runs each).\n\n", r.Date, r.Machine, r.Runs)
	fmt.Println("| id | what | runc shim | husk | husk/runc | target |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| P1 | `ctr run --rm --rootfs busybox /bin/true`, median (p90) | %.1f ms (%.1f) | %.1f ms (%.1f) | %.2f | ≤ 0.9 |\n",
		rc.Median, rc.P90, h.Median, h.P90, h.Median/rc.Median)
	fmt.Printf("| P2 | shim RSS, one idle container | %.1f MiB | %.1f MiB | %.2f | ≤ 1 |\n",
		float64(rm.RSSKiB)/1024, float64(hm.RSSKiB)/1024, float64(hm.RSSKiB)/float64(rm.RSSKiB))
	fmt.Printf("| P2 | shim PSS, one idle container | %.1f MiB | %.1f MiB | %.2f | — |\n",
		float64(rm.PSSKiB)/1024, float64(hm.PSSKiB)/1024, float64(hm.PSSKiB)/float64(rm.PSSKiB))
}
