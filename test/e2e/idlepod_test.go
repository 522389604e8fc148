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

	"github.com/huskrt/husk/test/devenv"

	"github.com/huskrt/husk/internal/procstatus"
)

// children counts the processes whose parent is pid.
func children(pid int) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: the name may hold spaces and ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}

// TestIdlePodThreads pins what an idle container costs its pod's shim in
// OS threads: none. Each held two (its stdin FIFO's open waiting for a
// client that ctr run -d never brings, and the blocking wait for its
// process): a pod of 30 idle containers had 69 threads, the runc shim 13
// (#14 item 2, P2).
func TestIdlePodThreads(t *testing.T) {
	needBench(t)
	const n = 10
	sb := name(t, "")
	run := func(id string, typ string) {
		cleanupContainer(t, id)
		ctr(t, "run", "-d", "--runtime", husk, "--annotation", "io.kubernetes.cri.container-type="+typ,
			"--annotation", "io.kubernetes.cri.sandbox-id="+sb, devenv.BusyboxRef, id, "sleep", "1000")
	}
	run(sb, "sandbox")
	pid := shimPidOf(t, sb)
	if pid == 0 {
		t.Fatalf("no shim serves %s", sb)
	}
	time.Sleep(time.Second)
	one := procstatus.MustThreads(t, pid)
	for i := 1; i < n; i++ {
		run(fmt.Sprintf("%s-%d", sb, i), "container")
	}
	time.Sleep(time.Second)
	if c := children(pid); c < n {
		t.Fatalf("the pod's shim (pid %d) has %d children, want its %d containers' processes", pid, c, n)
	}
	if all := procstatus.MustThreads(t, pid); all-one > 4 {
		t.Errorf("the shim had %d threads with one idle container and %d with %d: want no thread per container", one, all, n)
	}
}
