package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/shim"
	"github.com/huskrt/husk/test/devenv"
)

// podFlags makes ctr create a container as part of pod sb, as the CRI
// annotates them, so that one husk shim serves the whole pod.
func podFlags(sb string, sandbox bool) []string {
	typ := "container"
	if sandbox {
		typ = "sandbox"
	}
	return []string{"--annotation", "io.kubernetes.cri.container-type=" + typ, "--annotation", "io.kubernetes.cri.sandbox-id=" + sb}
}

// shimMetrics reads one shim's gauges from its management socket.
type shimMetrics struct {
	sock string
}

func (m shimMetrics) get(t *testing.T) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, // no connection (goroutine, fd) left in the shim
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", m.sock)
		}}}
	// A loaded machine can make one request time out; try thrice.
	var resp *http.Response
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if resp, err = client.Get("http://shim/metrics"); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	line := regexp.MustCompile(`(?m)^(go_goroutines|process_open_fds|husk_tasks) (\S+)$`)
	for _, m := range line.FindAllStringSubmatch(string(b), -1) {
		out[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	return out
}

// settle waits until the shim's goroutines and fds are back to base.
func (m shimMetrics) settle(t *testing.T, base map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := m.get(t)
		if now["go_goroutines"] == base["go_goroutines"] && now["process_open_fds"] == base["process_open_fds"] && now["husk_tasks"] == base["husk_tasks"] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shim leaks: before %v, after %v", base, now)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostMounts counts the mounts under the bench's directory.
func hostMounts(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), " "+bench.Dir+"/")
}

// TestPodCyclesLeakNothing is R7: in one pod (one shim), 200 container
// create/delete cycles and then 50 concurrent creates all succeed and leave
// the shim's goroutines and fds, the host's mounts and cgroups as they were.
func TestPodCyclesLeakNothing(t *testing.T) {
	needBench(t)
	if testing.Short() {
		t.Skip("200 cycles take about half a minute; not in -short")
	}
	sb := name(t, "sb")
	cleanupContainer(t, sb)
	ctr(t, append(append([]string{"run", "-d", "--runtime", husk}, podFlags(sb, true)...), devenv.BusyboxRef, sb, "sleep", "1000")...)
	cfg, err := config.Load(config.Path(""))
	if err != nil {
		t.Fatal(err)
	}
	m := shimMetrics{sock: filepath.Join(persist.Dir(cfg.Runtime.StateDir, bench.Namespace, sb), shim.ManagementSocket)}
	shimPid := shimPidOf(t, sb)

	cycle := func(id string) error {
		args := append(append([]string{"run", "--rm", "--runtime", husk}, podFlags(sb, false)...), devenv.BusyboxRef, id, "true")
		_, stderr, err := bench.Ctr(testCtx(t), args...)
		if err != nil {
			return fmt.Errorf("%s: %v: %s", id, err, stderr)
		}
		return nil
	}
	if err := cycle(sb + "-warm"); err != nil { // lazily started goroutines
		t.Fatal(err)
	}
	base, mounts := m.get(t), hostMounts(t)

	for i := 0; i < 200; i++ {
		if err := cycle(fmt.Sprintf("%s-c%d", sb, i)); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	if got := shimPidOf(t, sb); got != shimPid {
		t.Fatalf("the pod's shim changed: %d, then %d", shimPid, got)
	}
	m.settle(t, base)
	if got := hostMounts(t); got != mounts {
		t.Fatalf("mounts under the bench: %d before, %d after", mounts, got)
	}

	// 50 creates at once, all in the same shim.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("%s-p%d", sb, i)
		cleanupContainer(t, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append(append([]string{"run", "-d", "--runtime", husk}, podFlags(sb, false)...), devenv.BusyboxRef, id, "sleep", "1000")
			if _, stderr, err := bench.Ctr(testCtx(t), args...); err != nil {
				errs <- fmt.Errorf("%s: %v: %s", id, err, stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if got := m.get(t)["husk_tasks"]; got != 51 {
		t.Fatalf("shim serves %v tasks, want 51", got)
	}
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("%s-p%d", sb, i)
		ctr(t, "task", "kill", "-s", "SIGKILL", id)
	}
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("%s-p%d", sb, i)
		waitStopped(t, id)
		ctr(t, "task", "delete", id)
		ctr(t, "container", "delete", id)
		requireClean(t, id)
	}
	m.settle(t, base)
	if got := hostMounts(t); got != mounts {
		t.Fatalf("mounts under the bench: %d before, %d after", mounts, got)
	}
}

// waitStopped waits until task id is listed as stopped.
func waitStopped(t *testing.T, id string) {
	t.Helper()
	stopped := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+\d+\s+STOPPED\s*$`)
	deadline := time.Now().Add(20 * time.Second)
	for !stopped.MatchString(ctr(t, "task", "ls")) {
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not stop", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
