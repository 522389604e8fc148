//go:build !husk_vmmchild

package builtin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/virt"
)

// These tests run the real VMM process (this test binary, re-executed by
// Start and dispatched by TestMain) with fakeMachine in place of KVM, so
// everything the process does around the VM is exercised: the control
// channel, namespaces, pivot, descriptors, capabilities, seccomp. They
// need root (namespaces, pivot_root) and a build with -tags seccomp.

func needConfinement(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the VMM process needs root for its namespaces and pivot_root")
	}
	if !seccompBuilt {
		t.Skip("built without seccomp: go test -tags seccomp")
	}
}

// syncBuffer is a console the test reads while the copier writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testConfig(t *testing.T) *virt.VMConfig {
	t.Helper()
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &virt.VMConfig{
		ID: "test-vm", Dir: t.TempDir(), Kernel: kernel,
		KernelParams: []string{"console=ttyS0", "quiet"},
		VCPUs:        1, MemoryMiB: 64, DiskSlots: 2, Console: &syncBuffer{},
	}
}

func testHypervisor() *Hypervisor {
	return &Hypervisor{env: []string{testModeEnv + "=fake"}, replyTimeout: 5 * time.Second, stopTimeout: 2 * time.Second}
}

// startFake starts a VMM process with the fake machine; the test stops it.
func startFake(t *testing.T, cfg *virt.VMConfig) *vm {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := testHypervisor().Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := v.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return v.(*vm)
}

// debug sends a test request.
func debug(t *testing.T, v *vm, op string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := v.ctl.call(ctx, &request{Op: op}, nil, 5*time.Second)
	if err != nil {
		return "", err
	}
	return r.Text, replyErr(op, r)
}

func waitDone(t *testing.T, v *vm) error {
	t.Helper()
	select {
	case <-v.Done():
		return v.Err()
	case <-time.After(20 * time.Second):
		t.Fatal("the VM did not end")
		return nil
	}
}

// procStatus returns the fields of /proc/<pid>/task/<tid>/status for every
// thread.
func threadStatuses(t *testing.T, pid int) map[string]map[string]string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]map[string]string{}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		fields := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			fields[k] = strings.TrimSpace(v)
		}
		all[task.Name()] = fields
	}
	return all
}

// TestConfinedProcess checks the VMM process from outside, as the kernel
// sees it: on every thread no_new_privs, a seccomp filter and no
// capability in any set; its root is the VM's directory, in a mount
// namespace whose only mount is that directory, read-only; it is pid 1 of
// its own PID namespace; and it holds only the descriptors of a running
// VMM (here without KVM's).
func TestConfinedProcess(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	v := startFake(t, cfg)
	pid := v.Pid()

	// Threads come and go after confinement: each new one inherits it.
	if _, err := debug(t, v, "spin"); err != nil {
		t.Fatal(err)
	}
	threads := threadStatuses(t, pid)
	if len(threads) < 2 {
		t.Fatalf("%d threads", len(threads))
	}
	for tid, st := range threads {
		want := map[string]string{"NoNewPrivs": "1", "Seccomp": "2"}
		for _, c := range capFields {
			want[c] = "0000000000000000"
		}
		for k, w := range want {
			if st[k] != w {
				t.Errorf("thread %s: %s %q, want %q", tid, k, st[k], w)
			}
		}
	}

	var root, dir unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/root", pid), &root); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(cfg.Dir, &dir); err != nil {
		t.Fatal(err)
	}
	if root.Dev != dir.Dev || root.Ino != dir.Ino {
		t.Errorf("the VMM's root is %d:%d, want the VM dir %d:%d", root.Dev, root.Ino, dir.Dev, dir.Ino)
	}
	names := dirNames(t, fmt.Sprintf("/proc/%d/root", pid))
	if want := []string{recordName, vsockName}; !equal(names, want) {
		t.Errorf("the VMM sees %v in its root, want %v", names, want)
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(mounts)), "\n")
	if f := strings.Fields(lines[0]); len(lines) != 1 || len(f) < 6 || f[4] != "/" || !strings.HasPrefix(f[5], "ro,") {
		t.Errorf("the VMM's mounts, want only its root, read-only:\n%s", mounts)
	}
	self, err := debug(t, v, "self")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(self, "pid=1 ") || !strings.Contains(self, "permission denied") {
		t.Errorf("from inside: %s; want pid 1 and opening files refused", self)
	}

	kinds := fdKinds(t, pid)
	for fd, kind := range kinds {
		if !runningFD(fd, kind) {
			t.Errorf("the VMM holds fd %d (%s)", fd, kind)
		}
	}
	t.Logf("VMM process %d: %d threads, fds %v", pid, len(threads), kinds)
}

// fdKinds classifies process pid's descriptors as fdKind does inside.
func fdKinds(t *testing.T, pid int) map[int]string {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[int]string{}
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		p := fmt.Sprintf("/proc/%d/fd/%d", pid, fd)
		link, err := os.Readlink(p)
		if err != nil {
			continue
		}
		kind := link
		switch {
		case strings.HasPrefix(link, "socket:"):
			kind = "socket"
		case strings.HasPrefix(link, "pipe:"):
			kind = "pipe"
		case strings.HasPrefix(link, "anon_inode:"):
		default:
			var st unix.Stat_t
			if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
				switch st.Rdev {
				case devNull:
					kind = "/dev/null"
				case devKVM:
					kind = "/dev/kvm"
				case devTun:
					kind = "/dev/net/tun"
				}
			}
		}
		kinds[fd] = kind
	}
	return kinds
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// TestForbiddenSyscallKillsOnlyTheVMM: a system call off the allow-list
// ends the VMM process with SIGSYS, at once; the parent (this test) sees
// the request fail, the VM end with ErrSyscallNotAllowed and the VM's
// files removed.
func TestForbiddenSyscallKillsOnlyTheVMM(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	v := startFake(t, cfg)
	text, err := debug(t, v, opForbidden)
	if err == nil {
		t.Fatalf("the forbidden call returned: %s", text)
	}
	if err := waitDone(t, v); !errors.Is(err, ErrSyscallNotAllowed) {
		t.Fatalf("Err() = %v, want ErrSyscallNotAllowed", err)
	}
	if names := dirNames(t, cfg.Dir); len(names) != 0 {
		t.Errorf("left in the VM dir: %v", names)
	}
	if _, err := v.Stats(context.Background()); !errors.Is(err, ErrVMEnded) {
		t.Errorf("Stats after the end: %v, want ErrVMEnded", err)
	}
	t.Logf("Err: %v", v.Err())
}

// TestStop: the VMM stops on request and exits; the VM ended without
// error, its files are gone, and stopping again is not an error.
func TestStop(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	v := startFake(t, cfg)
	if err := v.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, v); err != nil {
		t.Fatalf("Err() = %v after Stop", err)
	}
	if names := dirNames(t, cfg.Dir); len(names) != 0 {
		t.Errorf("left in the VM dir: %v", names)
	}
	if err := v.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestStopKillsAVMMThatDoesNotStop: a VMM that ignores the stop request
// is killed after the stop timeout, and reaped.
func TestStopKillsAVMMThatDoesNotStop(t *testing.T) {
	needConfinement(t)
	v := startFake(t, testConfig(t))
	if _, err := debug(t, v, "ignore-stop"); err != nil {
		t.Fatal(err)
	}
	v.stopTimeout = 300 * time.Millisecond
	if err := v.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := waitDone(t, v)
	if !errors.Is(err, ErrVMMFailed) || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("Err() = %v, want a kill after the stop timeout", err)
	}
}

// TestVMEnds: the guest's power-off ends the VM without error, its reboot
// with ErrReboot, and a VMM that fails has its exit status and last
// stderr lines in Err.
func TestVMEnds(t *testing.T) {
	needConfinement(t)
	for _, tc := range []struct {
		op    string
		check func(error) bool
	}{
		{"poweroff", func(err error) bool { return err == nil }},
		{"reboot", func(err error) bool { return errors.Is(err, ErrReboot) }},
		{"crash", func(err error) bool {
			return errors.Is(err, ErrVMMFailed) && strings.Contains(err.Error(), "exit status 1") && strings.Contains(err.Error(), "the marker")
		}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			v := startFake(t, testConfig(t))
			debug(t, v, tc.op) // a crash answers with the channel's end
			if err := waitDone(t, v); !tc.check(err) {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

// TestConsoleAndDial: the guest's console reaches VMConfig.Console, and
// Dial reaches the guest through the socket the confined VMM listens on.
func TestConsoleAndDial(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	v := startFake(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := v.Dial(ctx, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "echo:hello\n" {
		t.Errorf("read %q, %v", line, err)
	}
	want := "fake guest booting: console=ttyS0 quiet\n"
	for i := 0; i < 100 && cfg.Console.(*syncBuffer).String() != want; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := cfg.Console.(*syncBuffer).String(); got != want {
		t.Errorf("console %q, want %q", got, want)
	}
}
