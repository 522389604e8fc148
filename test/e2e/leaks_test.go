package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
)

// leftovers lists what container id still holds on the host: mounts,
// cgroups, libcontainer state, shim processes. Empty means clean.
func leftovers(t *testing.T, id string) []string {
	t.Helper()
	var found []string
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, "/"+id+"/") || strings.Contains(l, "/"+id+" ") {
				found = append(found, "mount: "+l)
			}
		}
	}
	ns := bench.Namespace
	var cgdirs []string
	if cgroups.Mode() == cgroups.Unified {
		cgdirs = []string{filepath.Join("/sys/fs/cgroup", ns, id)}
	} else {
		for _, sub := range []string{"memory", "cpu,cpuacct", "pids", "devices", "freezer", "blkio"} {
			cgdirs = append(cgdirs, filepath.Join("/sys/fs/cgroup", sub, ns, id))
		}
	}
	// A plain container is its own sandbox; its state is all under here.
	for _, d := range append(cgdirs, filepath.Join("/run/husk", ns, id)) {
		if _, err := os.Stat(d); err == nil {
			found = append(found, "dir: "+d)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id && strings.Contains(args[0], "husk") {
				found = append(found, fmt.Sprintf("process: %s", strings.Join(args, " ")))
			}
		}
	}
	return found
}

// requireClean waits (shims exit asynchronously) until id left nothing.
func requireClean(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := leftovers(t, id)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s left behind:\n  %s", id, strings.Join(left, "\n  "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shimPidOf returns the pid of the husk shim serving container id, or 0.
func shimPidOf(t *testing.T, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id && strings.Contains(args[0], "husk") {
				pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
				return pid
			}
		}
	}
	return 0
}
