package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// podArgs are ctr flags putting a container into pod sb the way the CRI
// annotates it; containerd's runc shim and husk both serve a pod from one
// shim then.
func podArgs(sb string, sandbox bool) []string {
	typ := "container"
	if sandbox {
		typ = "sandbox"
	}
	return []string{"--annotation", "io.kubernetes.cri.container-type=" + typ, "--annotation", "io.kubernetes.cri.sandbox-id=" + sb}
}

// density grows one pod on runtime rt to 100 idle containers, measuring the
// shim at 1, 10 and 100 containers and the host's memory per container.
func density(ctx context.Context, c *devenv.Containerd, rt, rootfs string) (densityInfo, error) {
	var d densityInfo
	var err error
	if d.Pods10, err = tenPods(ctx, c, rt, rootfs); err != nil {
		return d, err
	}
	sb := "pod-" + rtName(rt)
	ids := []string{}
	defer func() {
		for _, id := range ids {
			killTask(ctx, c, id)
		}
		for _, id := range ids {
			removeContainer(ctx, c, id)
		}
	}()
	free0 := memAvailable()
	t0 := time.Now()
	start := func(id string, sandbox bool) error {
		args := append([]string{"run", "-d", "--runtime", rt, "--rootfs", rootfs}, podArgs(sb, sandbox)...)
		if _, stderr, err := c.Ctr(ctx, append(args, id, "/bin/sleep", "1000")...); err != nil {
			return fmt.Errorf("density %s: %s: %v: %s", rt, id, err, stderr)
		}
		ids = append(ids, id)
		return nil
	}
	if err := start(sb, true); err != nil {
		return d, err
	}
	pid, err := shimPid(sb)
	if err != nil {
		return d, err
	}
	settle := 2 * time.Second // let the shim's heap settle before reading it
	time.Sleep(settle)
	d.Shim1 = readMem(pid)
	for n := 2; n <= 100; n++ {
		if err := start(fmt.Sprintf("%s-%d", sb, n), false); err != nil {
			return d, err
		}
		if n == 10 {
			time.Sleep(settle)
			d.Shim10 = readMem(pid)
		}
	}
	d.StartSecs = time.Since(t0).Seconds() - 2*settle.Seconds()
	time.Sleep(2 * time.Second)
	d.Shim100 = readMem(pid)
	d.HostKiBPer = (free0 - memAvailable()) / 100
	out, _, err := c.Ctr(ctx, "task", "ls")
	if err != nil {
		return d, err
	}
	d.Running = strings.Count(out, "RUNNING")
	return d, nil
}

// memAvailable reads MemAvailable from /proc/meminfo, in KiB.
func memAvailable() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

var (
	densityOnly     = flag.Bool("density-only", false, "measure only the P2 and P11 shim memory rows (density.go)")
	densityRuntimeB = flag.String("density-runtime-b", "", "with -density-only, another runtime (e.g. io.containerd.huskb.v2, a second shim build in -shim-dir) measured beside husk, for A/B comparisons")
)

// tenPods runs 10 single-container pods on runtime rt at once, each
// grouped by the CRI's annotations into a shim of its own, and returns the
// mean RSS and PSS of those 10 shims. PSS divides the pages the shims
// share (the binary's text, the libraries) among them: it is what a node
// pays per pod, where one shim's RSS counts them all.
func tenPods(ctx context.Context, c *devenv.Containerd, rt, rootfs string) (memInfo, error) {
	const n = 10
	var ids []string
	defer func() {
		for _, id := range ids {
			killTask(ctx, c, id)
		}
		for _, id := range ids {
			removeContainer(ctx, c, id)
		}
	}()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("pods10-%s-%d", rtName(rt), i)
		args := append([]string{"run", "-d", "--runtime", rt, "--rootfs", rootfs}, podArgs(id, true)...)
		if _, stderr, err := c.Ctr(ctx, append(args, id, "/bin/sleep", "1000")...); err != nil {
			return memInfo{}, fmt.Errorf("ten pods %s: %s: %v: %s", rt, id, err, stderr)
		}
		ids = append(ids, id)
	}
	time.Sleep(2 * time.Second) // let the shims' heaps settle
	var sum memInfo
	for _, id := range ids {
		pid, err := shimPid(id)
		if err != nil {
			return memInfo{}, err
		}
		m := readMem(pid)
		if m.RSSKiB == 0 {
			return memInfo{}, fmt.Errorf("ten pods %s: no memory read for the shim of %s (pid %d)", rt, id, pid)
		}
		sum.RSSKiB += m.RSSKiB
		sum.PSSKiB += m.PSSKiB
	}
	return memInfo{RSSKiB: sum.RSSKiB / n, PSSKiB: sum.PSSKiB / n}, nil
}

// densityAlone is -density-only: the shim memory rows of runc, husk and,
// if asked, a second husk build, measured one runtime after another.
func densityAlone(ctx context.Context, c *devenv.Containerd, rootfs string, res *result) error {
	rts := []string{runcRT, huskRT}
	if *densityRuntimeB != "" {
		rts = append(rts, *densityRuntimeB)
	}
	for _, rt := range rts {
		d, err := density(ctx, c, rt, rootfs)
		if err != nil {
			return err
		}
		key := short(rt)
		if rt == *densityRuntimeB {
			key = rt
		}
		res.Density[key] = d
	}
	printTable(*res)
	if b, ok := res.Density[*densityRuntimeB]; ok {
		mib := func(kib int) float64 { return float64(kib) / 1024 }
		h := res.Density["husk"]
		fmt.Printf("\nA/B, husk then %s: RSS one container %.1f / %.1f MiB; ten pods, per shim: RSS %.1f / %.1f MiB, PSS %.1f / %.1f MiB; 100 containers %.1f / %.1f MiB\n",
			*densityRuntimeB, mib(h.Shim1.RSSKiB), mib(b.Shim1.RSSKiB), mib(h.Pods10.RSSKiB), mib(b.Pods10.RSSKiB),
			mib(h.Pods10.PSSKiB), mib(b.Pods10.PSSKiB), mib(h.Shim100.RSSKiB), mib(b.Shim100.RSSKiB))
	}
	return nil
}

// rtName names runtime rt in container ids: husk, runc, or for another
// (io.containerd.huskb.v2) its own name (huskb).
func rtName(rt string) string {
	if rt == huskRT || rt == runcRT {
		return short(rt)
	}
	if f := strings.Split(rt, "."); len(f) == 4 {
		return f[2]
	}
	return strings.NewReplacer(".", "-").Replace(rt)
}
