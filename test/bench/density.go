package main

import (
	"context"
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
	sb := "pod-" + short(rt)
	ids := []string{}
	defer func() {
		for _, id := range ids {
			_, _, _ = c.Ctr(ctx, "task", "kill", "-s", "SIGKILL", id)
		}
		for _, id := range ids {
			for i := 0; i < 100; i++ {
				if _, _, err := c.Ctr(ctx, "task", "delete", id); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			_, _, _ = c.Ctr(ctx, "container", "delete", id)
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
