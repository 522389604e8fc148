package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

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
	if err := evictShimBinary(c, rt); err != nil {
		return d, err
	}
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

// evictShimBinary drops runtime rt's shim binary from the page cache, so
// that every shim measured starts from one state: its binary as read from
// disk, which is how a node runs an installed binary. The state decides
// the RSS: the kernel maps a large folio of the page cache whole when a
// page of it faults in, and a binary the linker has just written sits in
// larger folios than one read in by faults or copied by install (the husk
// shim's RSS with one container was 25.5 MiB as linked, 22.0 read from
// disk or copied, same code, one run), while the runc shim's binary,
// installed long before, had long been read from disk.
// docs/RATIONALE.md, "Why a husk shim's RSS stays above the runc shim's".
func evictShimBinary(c *devenv.Containerd, rt string) error {
	path, err := shimBinary(c.Pid(), rt)
	if err != nil {
		return err
	}
	return evictPageCache(path)
}

// shimBinary finds the binary containerd runs for runtime rt as containerd
// finds it: in its PATH, read from the environment of its process pid.
func shimBinary(pid int, rt string) (string, error) {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "", err
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			return findShim(path, rt)
		}
	}
	return "", fmt.Errorf("runtime %s: containerd (pid %d) has no PATH", rt, pid)
}

// findShim finds the binary of runtime rt (io.containerd.NAME.v2:
// containerd-shim-NAME-v2) in the directories of path, first first.
func findShim(path, rt string) (string, error) {
	f := strings.Split(rt, ".")
	if len(f) != 4 || f[0] != "io" || f[1] != "containerd" {
		return "", fmt.Errorf("runtime %q: not io.containerd.NAME.VERSION", rt)
	}
	name := "containerd-shim-" + f[2] + "-" + f[3]
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("runtime %s: no %s in containerd's PATH", rt, name)
}

// evictPageCache writes back and drops the cached pages of the file at
// path. Pages a running process maps stay: evict before starting them.
func evictPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("evicting %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s: %w", path, err)
	}
	return nil
}
