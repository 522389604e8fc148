package cri

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/test/devenv"
)

// TestKubernetesExample: examples/kubernetes/containerd-husk.toml, imported
// as a drop-in by a containerd of its own (as /etc/containerd/conf.d would
// be), runs pods as shipped: handler husk, which names no config file and
// so works on a node where /etc/husk/config.toml is absent (it once named
// that file, which nothing installed, and every pod failed), and
// husk-wasm, whose configuration is inline (#13 item 1).
func TestKubernetesExample(t *testing.T) {
	needBench(t) // the suite's checks (root, tools, CNI) passed
	if _, err := os.Stat(config.DefaultPath); err == nil {
		t.Logf("%s exists on this host: the husk handler reads it", config.DefaultPath)
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "hk8s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b, err := devenv.Start(ctx, devenv.Options{
		Dir:      dir,
		ToolsBin: filepath.Join(root, ".tools", "bin"),
		ShimDir:  filepath.Join(suite.Dir, "bin"), // the shim setup built
		LogLevel: "info",
		CRI:      true,
		Imports:  []string{filepath.Join(root, "examples", "kubernetes", "containerd-husk.toml")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("stopping the example's containerd: %v", err)
		}
	})
	if err := b.ImportBusyboxInto(ctx, devenv.CRINamespace, devenv.BusyboxRef); err != nil {
		t.Fatal(err)
	}
	crictlOn := func(t *testing.T, args ...string) string {
		t.Helper()
		out, stderr, err := b.Crictl(ctx, args...)
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return strings.TrimSpace(out)
	}

	for _, handler := range []string{"husk", "husk-wasm"} {
		t.Run(handler, func(t *testing.T) {
			pdir := t.TempDir()
			podName := name(t, "pod")
			podCfg := writeJSON(t, filepath.Join(pdir, "pod.json"), map[string]any{
				"metadata": map[string]any{
					"name": podName, "namespace": "husk-cri", "attempt": 0,
					"uid": podName + "-" + time.Now().Format("150405.000000"),
				},
				"log_directory": pdir,
				"linux":         map[string]any{},
			})
			podID := crictlOn(t, "runp", "--runtime", handler, podCfg)
			defer func() {
				crictlOn(t, "stopp", podID)
				crictlOn(t, "rmp", podID)
				if d := persist.Dir(config.Default().Runtime.StateDir, devenv.CRINamespace, podID); exists(d) {
					t.Errorf("husk's sandbox state %s left", d)
				}
			}()
			var p inspectp
			if err := json.Unmarshal([]byte(crictlOn(t, "inspectp", "-o", "json", podID)), &p); err != nil {
				t.Fatal(err)
			}
			if p.Status.State != "SANDBOX_READY" || p.Status.RuntimeHandler != handler {
				t.Fatalf("pod %s: state %s, handler %q", podID, p.Status.State, p.Status.RuntimeHandler)
			}
			if handler != "husk" {
				return // husk-wasm's containers are Wasm modules: the pod's start is what its inline configuration decides
			}
			ctrCfg := writeJSON(t, filepath.Join(pdir, "c.json"), map[string]any{
				"metadata": map[string]any{"name": "hello"},
				"image":    map[string]any{"image": devenv.BusyboxRef},
				"command":  []string{"echo", "hello from the example"},
				"log_path": "hello.log",
			})
			id := crictlOn(t, "create", "--no-pull", podID, ctrCfg, podCfg)
			crictlOn(t, "start", id)
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(crictlOn(t, "logs", id), "hello from the example") {
				if time.Now().After(deadline) {
					t.Fatalf("container %s printed nothing in 30 s", id)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
