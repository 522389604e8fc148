package cri

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/test/devenv"
)

var (
	runnerOnce sync.Once
	runnerErr  error
)

// needWasm builds the Wasm runner next to the bench's shim (pods started
// afterwards find it) and assembles the test modules it names from
// test/wasm/testdata into a directory, which it returns.
func needWasm(t *testing.T, modules ...string) string {
	t.Helper()
	needBench(t)
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm (wabt) is missing: run `make tools`")
	}
	runnerOnce.Do(func() { runnerErr = devenv.BuildWasmRunner(filepath.Join(suite.Dir, "bin")) })
	if runnerErr != nil {
		t.Fatal(runnerErr)
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, m := range modules {
		if err := devenv.Wat2Wasm(filepath.Join(root, "test/wasm/testdata", m+".wat"), filepath.Join(dir, m+".wasm")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPodMixesNativeAndWasm: one husk pod (one shim) runs its pause
// container and a busybox container natively and a container whose
// command is a Wasm module (from a volume) as Wasm, chosen per container by
// args[0]; exec works in both, and the pod leaves nothing behind.
func TestPodMixesNativeAndWasm(t *testing.T) {
	mods := needWasm(t, "spin", "hello")
	p := runPod(t, "husk", podOpts{})
	native := p.start(t, "native", "sh", "-c", "echo native; sleep 1000")

	cfg := map[string]any{
		"metadata": map[string]any{"name": "wasm"},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  []string{"/wasm/spin.wasm"},
		"log_path": "wasm.log",
		"mounts":   []map[string]any{{"container_path": "/wasm", "host_path": mods, "readonly": true}},
		"linux": map[string]any{
			"security_context": map[string]any{"namespace_options": p.nsOptions},
		},
	}
	path := writeJSON(t, filepath.Join(p.dir, "wasm.json"), cfg)
	wasmID := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
	p.containers = append(p.containers, wasmID)
	crictl(t, "start", wasmID)

	if out := execSync(t, wasmID, "/wasm/hello.wasm"); out != "hello from wasm\n" {
		t.Errorf("exec of a module in the Wasm container: %q", out)
	}
	if out := execSync(t, native, "echo", "hi"); out != "hi\n" {
		t.Errorf("exec in the native container: %q", out)
	}
	// A native program given to the Wasm container's exec runs natively.
	if out := execSync(t, wasmID, "/bin/echo", "native-in-wasm"); out != "native-in-wasm\n" {
		t.Errorf("native exec in the Wasm container: %q", out)
	}
	for _, id := range []string{native, wasmID} {
		if st := inspectContainer(t, id).Status.State; st != "CONTAINER_RUNNING" {
			t.Errorf("container %.13s is %s", id, st)
		}
	}

	// The pod's record: every container in the one sandbox, the pause
	// container run by linux, the others by wasm (which looked at args[0]
	// and cleans up either kind).
	cfgHusk, err := config.Load(config.Path(filepath.Join(suite.Dir, "husk.toml")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(persist.Dir(cfgHusk.Runtime.StateDir, devenv.CRINamespace, p.ID), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec persist.Sandbox
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	handlers := map[string]string{}
	for _, c := range rec.Containers {
		handlers[c.ID] = c.Handler
	}
	want := map[string]string{p.ID: "linux", native: "wasm", wasmID: "wasm"}
	for id, h := range want {
		if handlers[id] != h {
			t.Errorf("container %.13s recorded with handler %q, want %q (record %s)", id, handlers[id], h, b)
		}
	}

	// Stopping the pod ends the Wasm module by signal like any process.
	t0 := time.Now()
	crictl(t, "stop", "-t", "5", wasmID)
	if d := time.Since(t0); d > 4*time.Second {
		t.Errorf("stopping the Wasm container took %v: SIGTERM did not end it", d)
	}
	if code := inspectContainer(t, wasmID).Status.ExitCode; code != 143 {
		t.Errorf("Wasm container stopped with exit %d, want 143 (SIGTERM)", code)
	}
}
