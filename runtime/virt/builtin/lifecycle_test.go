//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/errdefs"
)

// TestStartPutsTheVMMInItsCgroup: the VMM process runs in
// VMConfig.Cgroup from before it builds the VM.
func TestStartPutsTheVMMInItsCgroup(t *testing.T) {
	needConfinement(t)
	name := fmt.Sprintf("husk-builtin-test-%d", os.Getpid())
	root, want := "/sys/fs/cgroup/pids", "pids:/"+name
	if cgroups.Mode() == cgroups.Unified {
		root, want = "/sys/fs/cgroup", "0::/"+name
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup here: %v", err)
	}
	defer func() {
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	cfg := testConfig(t)
	cfg.Cgroup = "/" + name
	v := startFake(t, cfg)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", v.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want+"\n") {
		t.Errorf("the VMM's cgroups:\n%s\nwant %s", b, want)
	}
	v.Stop(context.Background())

	cfg = testConfig(t)
	cfg.Cgroup = "/" + name + "-missing"
	if _, err := testHypervisor().Start(context.Background(), cfg); err == nil {
		t.Error("Start with a cgroup that does not exist succeeded")
	}
	if names := dirNames(t, cfg.Dir); len(names) != 0 {
		t.Errorf("a failed Start left %v", names)
	}
}

// TestStartWithoutKVM: where /dev/kvm cannot be opened, Start fails with
// the VMM's own reason and leaves nothing behind.
func TestStartWithoutKVM(t *testing.T) {
	needConfinement(t)
	if _, err := os.Stat("/dev/kvm"); err == nil {
		t.Skip("this machine has /dev/kvm")
	}
	cfg := testConfig(t)
	h := testHypervisor()
	h.env = nil // the real VMM
	_, err := h.Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "/dev/kvm") {
		t.Fatalf("Start: %v, want an error about /dev/kvm", err)
	}
	if names := dirNames(t, cfg.Dir); len(names) != 0 {
		t.Errorf("a failed Start left %v", names)
	}
	t.Logf("Start: %v", err)
}

// TestCleanupEndsAConfinedVMM: a later shim's Cleanup kills a running VMM
// process found through the VM's dir, and removes its files.
func TestCleanupEndsAConfinedVMM(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	v := startFake(t, cfg)
	// A second VM in the same dir is refused while the first runs.
	if _, err := testHypervisor().Start(context.Background(), cfg); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("a second Start in a live VM's dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := New().Cleanup(ctx, cfg.Dir); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, v); !errors.Is(err, ErrVMMFailed) {
		t.Errorf("Err() = %v after a Cleanup", err)
	}
	if names := dirNames(t, cfg.Dir); len(names) != 0 {
		t.Errorf("left in the VM dir: %v", names)
	}
}
