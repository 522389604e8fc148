package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/huskrt/husk/test/devenv"
)

// TestWasmArtifact: a Wasm OCI artifact (its module is the image's layer,
// its rootfs empty), imported into the CRI's namespace as a user would,
// runs in a husk pod: the shim finds the module through containerd's API
// by the container's image. A second container runs another export
// (path#func) of the same module.
func TestWasmArtifact(t *testing.T) {
	mods := needWasm(t, "multi")
	wasm, err := os.ReadFile(filepath.Join(mods, "multi.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	ref := "husk.local/wasm/cri-artifact:latest"
	tarPath := filepath.Join(t.TempDir(), "artifact.tar")
	if err := devenv.ArtifactImage(tarPath, ref, devenv.Artifact{
		Config: ocispec.ImageConfig{Entrypoint: []string{"/multi.wasm"}},
		Layers: []devenv.ArtifactLayer{{Data: wasm, Title: "multi.wasm"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := bench.ImportArtifactInto(testCtx(t), devenv.CRINamespace, tarPath, ref); err != nil {
		t.Fatal(err)
	}
	p := runPod(t, "husk", podOpts{})
	for name, tt := range map[string]struct {
		command []string
		out     string
	}{
		"start": {nil, "start"},
		"other": {[]string{"/multi.wasm#other"}, "other"},
	} {
		cfg := map[string]any{
			"metadata": map[string]any{"name": name},
			"image":    map[string]any{"image": ref},
			"log_path": name + ".log",
			"linux": map[string]any{
				"security_context": map[string]any{"namespace_options": p.nsOptions},
			},
		}
		if tt.command != nil {
			cfg["command"] = tt.command
		}
		path := writeJSON(t, filepath.Join(p.dir, name+".json"), cfg)
		id := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
		p.containers = append(p.containers, id)
		crictl(t, "start", id)
		var st inspect
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if st = inspectContainer(t, id); st.Status.State == "CONTAINER_EXITED" || time.Now().After(deadline) {
				break
			}
		}
		log, _ := os.ReadFile(filepath.Join(p.LogDir, name+".log"))
		if st.Status.State != "CONTAINER_EXITED" || st.Status.ExitCode != 0 || !strings.Contains(string(log), " stdout F "+tt.out+"\n") {
			t.Errorf("%s: %s, exit %d, log %q; want exited 0 with %q", name, st.Status.State, st.Status.ExitCode, log, tt.out)
		}
	}
}
