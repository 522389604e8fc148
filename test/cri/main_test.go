package cri

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

var (
	// suite is what TestMain set up; bench is its CRI-enabled containerd,
	// shared by the package's tests (nil when suite.Skip says why not).
	suite devenv.Suite
	bench *devenv.Containerd
	// hostNetns is /var/run/netns as the run found it; tests check that
	// the CRI adds no namespace there (the bench mounts pod netns under
	// its state).
	hostNetns []string
)

func TestMain(m *testing.M) {
	os.Exit(devenv.RunSuite(m, "cri", &suite, setup))
}

func setup(s *devenv.Suite) error {
	if os.Geteuid() != 0 {
		s.Skip = "needs root (containers, network namespaces, mounts, cgroups)"
		return nil
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	tools := filepath.Join(root, ".tools", "bin")
	for _, tool := range []string{"containerd", "runc", "crictl"} {
		if _, err := os.Stat(filepath.Join(tools, tool)); err != nil {
			s.Skip = tool + " is not built in .tools/bin: run `make tools` (or `make test`)"
			return nil
		}
	}
	if _, err := os.Stat(filepath.Join(devenv.CNIBinDir, "bridge")); err != nil {
		s.Skip = "no CNI plugins in " + devenv.CNIBinDir + ": run `make tools` (apt-get install containernetworking-plugins)"
		return nil
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		s.Skip = "gcc (which builds the pause image) is missing: run `make tools`"
		return nil
	}
	hostNetns = listDir("/var/run/netns")
	guest := virtSetup(root)

	dir, err := os.MkdirTemp("", "hcri")
	if err != nil {
		return err
	}
	s.Dir = dir
	shimDir := filepath.Join(dir, "bin")
	// Build the shim from this tree so the tests never run a stale binary.
	if err := devenv.BuildShim(shimDir); err != nil {
		return fmt.Errorf("building the shim: %w", err)
	}
	// husk accounts each pod's shim to the pod's cgroup in these tests,
	// so every pod test also checks that mode sets up and cleans up.
	huskConfig := filepath.Join(dir, "husk.toml")
	if err := os.WriteFile(huskConfig, []byte("[runtime]\nsandbox_cgroup_only = true\n"), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	c, err := devenv.Start(ctx, devenv.Options{
		Dir:            filepath.Join(dir, "c"),
		ToolsBin:       tools,
		ShimDir:        shimDir,
		LogLevel:       "info",
		CRI:            true,
		HuskConfig:     huskConfig,
		VirtGuestImage: guest,
	})
	if err != nil {
		return err
	}
	s.Bench, bench = c, c
	fmt.Fprintf(os.Stderr, "cri: bench with CRI ready in %s (dir %s, bridge %s, subnet %s)\n",
		time.Since(t0).Round(time.Millisecond), c.Dir, c.CNI().Bridge, c.CNI().Subnet)
	return c.ImportBusyboxInto(ctx, devenv.CRINamespace, devenv.BusyboxRef)
}

// needBench skips t when the bench could not be set up, saying why.
func needBench(t *testing.T) *devenv.Containerd {
	t.Helper()
	if bench == nil {
		t.Skip(suite.Skip)
	}
	return bench
}

// handlers are the CRI runtime handlers (RuntimeClass names) of the bench's
// configuration that every test runs with.
var handlers = []string{"runc", "husk"}

// forEachHandler runs f as a subtest per runtime handler.
func forEachHandler(t *testing.T, f func(t *testing.T, handler string)) {
	needBench(t)
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) { f(t, h) })
	}
}

// testCtx returns a context that ends with the test, bounded.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// crictl runs crictl against the bench and fails the test on error.
func crictl(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := needBench(t).Crictl(testCtx(t), args...)
	if err != nil {
		t.Fatalf("crictl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// waitForLog waits up to 10 s for container id's log (crictl logs) to hold
// want, and returns the log as it is then: a container's output reaches
// its log file a moment after it is written.
func waitForLog(t *testing.T, id, want string) string {
	t.Helper()
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if logs = crictl(t, "logs", id); strings.Contains(logs, want) {
			break
		}
	}
	return logs
}

// name returns a name unique to this test (devenv.TestName): a pod or
// container name.
var name = devenv.TestName

// listDir returns the names in dir; nil when it does not exist.
func listDir(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
