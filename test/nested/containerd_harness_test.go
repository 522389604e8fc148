package nested

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

// ctrRunOptions say what a containerd run's outer guest holds beyond
// containerd, ctr, the static shim, the guest image and the busybox image.
type ctrRunOptions struct {
	ptyrun bool // test/nested/ptyrun at /bin/ptyrun
	netpod bool // test/nested/netpod at /bin/netpod (mode 0644: chmod it)
	cri    bool // containerd's CRI plugin, crictl, the CNI plugins (FindCRI)
	// modules are more of the outer kernel's modules, loaded at boot.
	modules []string
}

// ctrRun is a containerd run a test set up: its assets, its outer
// guest's configuration (Scenario and ScenarioTimeout still to fill in)
// and its directory.
type ctrRun struct {
	as  *Assets
	cfg ContainerdConfig
	dir string
}

// setupContainerdRun is the start of every test that runs a scenario in
// a containerd run: nestedSetup (about says how long the run takes), the
// static shim, the guest image (from the tree's agent), the busybox image
// and what o asks for. A missing asset skips the test, or fails it under
// CI.
func setupContainerdRun(t *testing.T, about string, o ctrRunOptions) *ctrRun {
	t.Helper()
	repo, as := nestedSetup(t, about)
	tools, err := FindContainerdTools(repo)
	skipIfMissing(t, err)
	dir := t.TempDir()
	shim := filepath.Join(dir, "containerd-shim-husk-v2")
	skipIfMissing(t, BuildShim(context.Background(), repo, shim))
	cfg := ContainerdConfig{Tools: tools, Shim: shim, Modules: o.modules, Files: map[string][]byte{}}
	if o.ptyrun {
		cfg.Ptyrun = buildStatic(t, repo, dir, "./test/nested/ptyrun", "ptyrun")
	}
	if o.netpod {
		b, err := os.ReadFile(buildStatic(t, repo, dir, "./test/nested/netpod", "netpod"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Files["bin/netpod"] = b
	}
	if o.cri {
		cfg.CRI, err = FindCRI(repo, dir, false)
		skipIfMissing(t, err)
	}
	agent := buildAgent(t, repo, dir)
	img := filepath.Join(dir, "guest")
	if _, err := guestimage.Build(context.Background(), guestimage.Options{
		KernelDir: filepath.Join(repo, ".tools", "kernel", "cloud-amd64"), Agent: agent, OutDir: img}); err != nil {
		t.Fatal(err)
	}
	cfg.GuestKernel = filepath.Join(img, guestimage.KernelFile)
	cfg.GuestInitrd = filepath.Join(img, guestimage.InitrdFile)
	cfg.GuestManifest = filepath.Join(img, guestimage.ManifestFile)
	cfg.Image = filepath.Join(dir, "busybox.tar")
	if err := devenv.BusyboxImage(cfg.Image, ContainerdImageRef); err != nil {
		t.Fatal(err)
	}
	return &ctrRun{as: as, cfg: cfg, dir: dir}
}

// ctrRunSlack is what a containerd run may take beyond its scenario: the
// outer guest's boot, containerd's start, the images' import.
const ctrRunSlack = 120 * time.Second

// boot boots the outer guest with scenario (bounded by timeout) and
// returns the run, whatever its verdict. A freeze of the whole outer guest
// is QEMU's (see runQEMUWatched), not husk's: it is retried once, and
// said; a second one fails t, as does any error of QEMU's. So is a run
// that failed after the outer guest's clock jumped (see clockWatch).
func (r *ctrRun) boot(t *testing.T, scenario string, timeout time.Duration) *ContainerdResult {
	t.Helper()
	cfg := r.cfg
	cfg.Scenario, cfg.ScenarioTimeout = scenario, timeout
	var tee io.Writer
	if testing.Verbose() {
		tee = prefixWriter{os.Stderr}
	}
	boot := func() (*ContainerdResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout+ctrRunSlack)
		defer cancel()
		return RunContainerd(ctx, r.as, cfg, r.dir, tee)
	}
	res, err := boot()
	switch {
	case res != nil && res.Frozen:
		t.Logf("attempt 1: %v after %v, retrying once; console:\n%s", err, res.Wall.Round(time.Millisecond), tail(res.Console, 30))
		res, err = boot()
	case res != nil && res.ClockJump != "" && (err != nil || !res.Passed()):
		// Every deadline in the guest expired at once: the verdict is
		// the emulator's clock's, not husk's.
		t.Logf("attempt 1: verdict %q after %v, but %s: retrying once; console:\n%s", res.Verdict, res.Wall.Round(time.Millisecond), res.ClockJump, tail(res.Console, 30))
		res, err = boot()
	}
	if res == nil {
		t.Fatal(err)
	}
	jumped := ""
	if res.ClockJump != "" {
		jumped = "; " + res.ClockJump
	}
	if err != nil {
		t.Fatalf("verdict %q after %v (qemu: %v%s)\nconsole:\n%s", res.Verdict, res.Wall.Round(time.Millisecond), err, jumped, tail(res.Console, 200))
	}
	if res.ClockJump != "" && !res.Passed() {
		t.Logf("again: %s", res.ClockJump)
	}
	return res
}

// run is boot, and fails t unless the scenario passed; the run's lines
// are logged.
func (r *ctrRun) run(t *testing.T, scenario string, timeout time.Duration) *ContainerdResult {
	t.Helper()
	res := r.boot(t, scenario, timeout)
	if !res.Passed() {
		t.Fatalf("verdict %q after %v\nconsole:\n%s", res.Verdict, res.Wall.Round(time.Millisecond), tail(res.Console, 200))
	}
	for _, l := range res.Lines() {
		t.Log(l)
	}
	return res
}
