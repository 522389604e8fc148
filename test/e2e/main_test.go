// Package e2e runs husk through a real containerd (tier 2): a private
// containerd v2.4.2 started for the run, the shim built fresh from this
// tree, images built locally, runc as the baseline. It needs root and the
// tools `make tools` installs; without them every test skips and says why.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

const (
	husk = "io.containerd.husk.v2"
	runc = "io.containerd.runc.v2"
)

var (
	// suite is what TestMain set up; bench is its containerd, shared by
	// the package's tests (nil when suite.Skip says why not).
	suite devenv.Suite
	bench *devenv.Containerd
	// rootfsDir is an unpacked busybox rootfs for `ctr run --rootfs`.
	rootfsDir string
	// shimDir holds the shims the bench's containerd finds in its PATH.
	shimDir string
)

func TestMain(m *testing.M) {
	os.Exit(devenv.RunSuite(m, "e2e", &suite, setup))
}

func setup(s *devenv.Suite) error {
	if os.Geteuid() != 0 {
		s.Skip = "needs root (containers, mounts, cgroups)"
		return nil
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	tools := filepath.Join(root, ".tools", "bin")
	if _, err := os.Stat(filepath.Join(tools, "containerd")); err != nil {
		s.Skip = "containerd is not built: run `make tools` (or `make test`)"
		return nil
	}
	if _, err := os.Stat(filepath.Join(tools, "runc")); err != nil {
		s.Skip = "runc (the parity baseline) is not built: run `make tools`"
		return nil
	}
	dir, err := os.MkdirTemp("", "he2e")
	if err != nil {
		return err
	}
	s.Dir = dir
	shimDir = filepath.Join(dir, "bin")
	// Build the shim from this tree so the tests never run a stale binary.
	if err := devenv.BuildShim(shimDir); err != nil {
		return fmt.Errorf("building the shim: %w", err)
	}
	rootfsDir = filepath.Join(dir, "rootfs")
	if err := devenv.BusyboxRootfs(rootfsDir); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := devenv.Start(ctx, devenv.Options{
		Dir:      filepath.Join(dir, "c"),
		ToolsBin: tools,
		ShimDir:  shimDir,
		LogLevel: "info",
	})
	if err != nil {
		return err
	}
	s.Bench, bench = c, c
	if err := c.ImportBusybox(ctx, devenv.BusyboxRef); err != nil {
		return err
	}
	return nil
}

// needBench skips t when the bench could not be set up, saying why.
func needBench(t *testing.T) *devenv.Containerd {
	t.Helper()
	if bench == nil {
		t.Skip(suite.Skip)
	}
	return bench
}

// ctx returns a context that ends with the test, bounded.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// name returns a container id unique to this test, in the characters
// containerd accepts.

// name returns a name unique to this test (devenv.TestName).
var name = devenv.TestName

// ctr runs ctr against the bench; it fails the test on error unless
// wantErr.
func ctr(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := needBench(t).Ctr(testCtx(t), args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// ctrErr runs ctr expecting failure and returns its stderr.
func ctrErr(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := needBench(t).Ctr(testCtx(t), args...)
	if err == nil {
		t.Fatalf("ctr %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	return stderr
}

// exitCode returns the exit status of a finished command's error.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// cleanupContainer removes a container and its task however the test ended.
func cleanupContainer(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _, _ = bench.Ctr(ctx, "task", "kill", "-s", "SIGKILL", id)
		for i := 0; i < 50; i++ {
			if _, _, err := bench.Ctr(ctx, "task", "delete", id); err == nil {
				break
			}
			if out, _, _ := bench.Ctr(ctx, "task", "ls", "-q"); !strings.Contains(out, id) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _, _ = bench.Ctr(ctx, "container", "delete", id)
	})
}
