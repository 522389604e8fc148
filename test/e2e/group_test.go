package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/test/devenv"
)

// groupArgs annotates a container into io.husk.group g.
func groupArgs(g string) []string {
	return []string{"--annotation", runtime.AnnotationGroup + "=" + g}
}

// shimOfTask returns the pid of the shim serving a running container: its
// init's parent (the shim is the subreaper its init reparented to).
func shimOfTask(t *testing.T, id string) int {
	t.Helper()
	for _, l := range strings.Split(ctr(t, "task", "ls"), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != id {
			continue
		}
		stat, err := os.ReadFile("/proc/" + f[1] + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			t.Fatal(err)
		}
		return ppid
	}
	t.Fatalf("task %s is not running", id)
	return 0
}

// gone waits for pid to end.
func gone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); err != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestGroupSharesAShim: containers of one io.husk.group share a shim (a
// container outside it has its own); each stays its own sandbox, so one
// going leaves the others running, and the shim exits with the last.
func TestGroupSharesAShim(t *testing.T) {
	needBench(t)
	g := name(t, "g")
	a, b, c := name(t, "a"), name(t, "b"), name(t, "c")
	for _, id := range []string{a, b, c} {
		cleanupContainer(t, id)
	}
	ctr(t, append(append([]string{"run", "-d", "--runtime", husk}, groupArgs(g)...), devenv.BusyboxRef, a, "sleep", "1000")...)
	ctr(t, append(append([]string{"run", "-d", "--runtime", husk}, groupArgs(g)...), devenv.BusyboxRef, b, "sleep", "1000")...)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, c, "sleep", "1000")
	shim := shimOfTask(t, a)
	if s := shimOfTask(t, b); s != shim {
		t.Fatalf("containers of group %s are served by shims %d and %d, want one", g, shim, s)
	}
	if s := shimOfTask(t, c); s == shim {
		t.Fatalf("a container outside the group shares its shim %d", s)
	}

	ctr(t, "task", "kill", "-s", "SIGKILL", a)
	waitStopped(t, a)
	ctr(t, "task", "delete", a)
	ctr(t, "container", "delete", a)
	requireClean(t, a)
	if out := ctr(t, "task", "exec", "--exec-id", "after", b, "echo", "alive"); out != "alive\n" {
		t.Fatalf("exec in the group's other container = %q", out)
	}
	if gone(shim, 0) {
		t.Fatal("the group's shim exited with a container left")
	}
	ctr(t, "task", "kill", "-s", "SIGKILL", b)
	waitStopped(t, b)
	ctr(t, "task", "delete", b)
	ctr(t, "container", "delete", b)
	requireClean(t, b)
	if !gone(shim, 10*time.Second) {
		t.Errorf("the group's shim %d is still running after its last container", shim)
	}
}

// TestGroupComingAndGoing: containers of a group that start and end all
// the time, several at once — a shim deciding to exit just as a newcomer
// was handed its address must never fail the newcomer's create.
func TestGroupComingAndGoing(t *testing.T) {
	b := needBench(t)
	g := name(t, "g")
	const workers, each = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := name(t, fmt.Sprintf("w%d-%d", w, i))
				args := append(append([]string{"run", "--rm", "--runtime", husk}, groupArgs(g)...), devenv.BusyboxRef, id, "true")
				if _, stderr, err := b.Ctr(testCtx(t), args...); err != nil {
					errs <- fmt.Errorf("%s: %v: %s", id, err, stderr)
					cleanupContainer(t, id)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		for i := range each {
			requireClean(t, name(t, fmt.Sprintf("w%d-%d", w, i)))
		}
	}
}

// TestGroupBadName: a group name that is not one is refused, saying why.
func TestGroupBadName(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	stderr := ctrErr(t, append(append([]string{"run", "--rm", "--runtime", husk}, groupArgs("../x")...), devenv.BusyboxRef, id, "true")...)
	if !strings.Contains(stderr, runtime.AnnotationGroup) {
		t.Errorf("error %q does not name the annotation", stderr)
	}
	requireClean(t, id)
}

// TestGroupShimKilled: when a group's shim dies, containerd's delete
// cleans up each of its containers (each its own sandbox).
func TestGroupShimKilled(t *testing.T) {
	needBench(t)
	g := name(t, "g")
	ids := []string{name(t, "a"), name(t, "b")}
	for _, id := range ids {
		cleanupContainer(t, id)
		ctr(t, append(append([]string{"run", "-d", "--runtime", husk}, groupArgs(g)...), devenv.BusyboxRef, id, "sleep", "1000")...)
	}
	shim := shimOfTask(t, ids[0])
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		// containerd runs delete for each container and drops (or
		// stops) its task.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out := ctr(t, "task", "ls")
			if !strings.Contains(out, id) || strings.Contains(lineOf(out, id), "STOPPED") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s still running after its shim died:\n%s", id, out)
			}
		}
		_, _, _ = bench.Ctr(testCtx(t), "task", "delete", id)
		ctr(t, "container", "delete", id)
		requireClean(t, id)
	}
}
