package devenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// toolsBin returns <repo>/.tools/bin, skipping the test when it cannot run
// containerd there.
func toolsBin(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containerd and runc")
	}
	needBusybox(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".tools", "bin")
	if _, err := os.Stat(filepath.Join(bin, "containerd")); err != nil {
		t.Skipf("no containerd in %s (run hack/install-tools.sh): %v", bin, err)
	}
	return bin
}

// startBench starts a bench in a short directory (shim sockets live under
// it) and stops it when the test ends, logging containerd's log on failure.
func startBench(t *testing.T, o Options) *Containerd {
	t.Helper()
	if o.ToolsBin == "" {
		o.ToolsBin = toolsBin(t)
	}
	dir, err := os.MkdirTemp("", "husk-t-")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = dir
	ctx := t.Context()
	t0 := time.Now()
	c, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd ready in %s (dir %s)", time.Since(t0).Round(time.Millisecond), c.Dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log:\n%s", c.logTail(40))
		}
		if err := c.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestContainerdRunsBusyboxAndStopLeavesNothing(t *testing.T) {
	c := startBench(t, Options{})
	ctx := t.Context()

	t0 := time.Now()
	if err := c.ImportBusybox(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Logf("busybox imported in %s", time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	out, _, err := c.Ctr(ctx, "run", "--rm", "--runtime", "io.containerd.runc.v2", BusyboxRef, "t1", "echo", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if out != "hi\n" {
		t.Errorf("image run printed %q, want %q", out, "hi\n")
	}
	t.Logf("ctr run --rm (image) took %s", time.Since(t0).Round(time.Millisecond))

	rootfs := filepath.Join(c.Dir, "rootfs")
	if err := BusyboxRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	// Absolute path: without an image config ctr's spec has no PATH at all.
	out, _, err = c.Ctr(ctx, "run", "--rm", "--runtime", "io.containerd.runc.v2", "--rootfs", rootfs, "t2", "/bin/echo", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if out != "hi\n" {
		t.Errorf("rootfs run printed %q, want %q", out, "hi\n")
	}

	// Something for Stop to clean up: a running task with its rootfs mounted.
	if _, _, err := c.Ctr(ctx, "run", "-d", "--runtime", "io.containerd.runc.v2", BusyboxRef, "t3", "sleep", "1000"); err != nil {
		t.Fatal(err)
	}
	if m, err := mountsUnder(c.Dir); err != nil || len(m) == 0 {
		t.Fatalf("no mounts under %s while t3 runs (%v); the test proves nothing", c.Dir, err)
	}
	pid, addr := c.Pid(), c.Address()
	if len(shimPids(addr)) == 0 {
		t.Fatal("no shim found for t3")
	}

	t0 = time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %s", time.Since(t0).Round(time.Millisecond))
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Stop (%v)", c.Dir, err)
	}
	if m, err := mountsUnder(c.Dir); err != nil || len(m) > 0 {
		t.Errorf("still mounted after Stop: %v (%v)", m, err)
	}
	if pids := shimPids(addr); len(pids) > 0 {
		t.Errorf("shims still running after Stop: %v", pids)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("containerd pid %d still exists after Stop (%v)", pid, err)
	}
}

// TestDisabledPluginsExist guards disabledPlugins: containerd ignores a URI
// that names no plugin, so a renamed plugin would silently come back.
func TestDisabledPluginsExist(t *testing.T) {
	ctx := t.Context()
	all := startBench(t, Options{allPlugins: true})
	out, _, err := all.Ctr(ctx, "plugins", "ls")
	if err != nil {
		t.Fatal(err)
	}
	have := pluginURIs(out)
	for _, p := range disabledPlugins {
		if !have[p] {
			t.Errorf("disabled plugin %s does not exist in this containerd", p)
		}
	}

	c := startBench(t, Options{})
	out, _, err = c.Ctr(ctx, "plugins", "ls")
	if err != nil {
		t.Fatal(err)
	}
	have = pluginURIs(out)
	for _, p := range disabledPlugins {
		if have[p] {
			t.Errorf("plugin %s is loaded although disabled", p)
		}
	}
}

// pluginURIs parses `ctr plugins ls` (TYPE ID PLATFORMS STATUS).
func pluginURIs(out string) map[string]bool {
	uris := map[string]bool{}
	for _, l := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(l); len(f) >= 2 {
			uris[f[0]+"."+f[1]] = true
		}
	}
	return uris
}

func TestStartFailsClearlyAndCleansUp(t *testing.T) {
	bin := toolsBin(t)
	dir, err := os.MkdirTemp("", "husk-t-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// An unknown log level makes containerd exit at once.
	_, err = Start(t.Context(), Options{Dir: dir, ToolsBin: bin, Env: []string{"HUSK_TEST=1"}, LogLevel: "bogus"})
	if err == nil {
		t.Fatal("Start succeeded with an invalid log level")
	}
	t.Logf("Start: %v", err)
	if !strings.Contains(err.Error(), "bogus") {
		t.Errorf("error does not carry containerd's log: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind after a failed Start (%v)", dir, err)
	}
}
