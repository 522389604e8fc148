package reaper

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain makes the test process a child subreaper, as a shim is, so that
// the orphans the tests make reparent to it.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// waitZombie waits until pid is a zombie.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !zombie(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not exit", pid)
		}
	}
}

// orphan makes a process whose parent exits first: it reparents to the test
// process and, once it exits, is a zombie nobody waits for. It returns its
// pid.
func orphan(t *testing.T, r *Reaper) int {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "pid")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	own := r.Spawn()
	cmd := exec.Command("sh", "-c", "sleep 0.2 & echo $!")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		own(0)
		t.Fatal(err)
	}
	own(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	r.Release(cmd.Process.Pid)
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("no pid in %q", b)
	}
	return pid
}

func TestRunReapsOrphans(t *testing.T) {
	r := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	pid := orphan(t, r)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d was not reaped (zombie: %v)", pid, zombie(pid))
		}
	}
	if r.Reaped() < 1 {
		t.Errorf("Reaped() = %d, want at least the orphan", r.Reaped())
	}
}

// An owned child's status stays its owner's, even as a zombie the reaper
// sees.
func TestOwnedChildKeepsItsStatus(t *testing.T) {
	r := New()
	own := r.Spawn()
	cmd := exec.Command("sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	own(cmd.Process.Pid)
	waitZombie(t, cmd.Process.Pid)
	if _, err := r.Scan(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("owner's Wait = %v, want exit status 7", err)
	}
	r.Release(cmd.Process.Pid)
}

// A child that dies between its fork and its owner's record of it is not
// taken: no scan runs while a spawn is in flight, and the skipped scan runs
// once the spawn is owned.
func TestNoScanDuringSpawn(t *testing.T) {
	r := New()
	own := r.Spawn()
	cmd := exec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, cmd.Process.Pid)
	if n, err := r.Scan(); n != 0 || err != nil {
		t.Fatalf("Scan during a spawn = %d, %v; want nothing done", n, err)
	}
	own(cmd.Process.Pid)
	select {
	case <-r.kick:
	default:
		t.Error("the skipped scan was not asked for again once the spawn was owned")
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("owner's Wait = %v, want exit status 3", err)
	}
	r.Release(cmd.Process.Pid)
}

func TestZombie(t *testing.T) {
	if zombie(os.Getpid()) {
		t.Error("the test process is not a zombie")
	}
	if zombie(1 << 30) {
		t.Error("no such process is not a zombie")
	}
}
