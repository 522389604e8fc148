package wasm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/wasm"
	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/test/testclient"
)

// These tests run Wasm OCI artifacts: images whose layers are modules, not
// tar archives, imported as a user would (`ctr images import --platform
// wasip1/wasm --no-unpack`) and run by husk from containerd's content
// store (runtime/wasm/artifact.go).

// artifactModule is testdata/artifact.wat built: _start prints "artifact"
// and exits 3, "hello" prints "hello", "sleep" sleeps.
var artifactModule = sync.OnceValues(func() ([]byte, error) {
	root, err := devenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(suite.Dir, "modules", "artifact.wasm")
	if err := devenv.Wat2Wasm(filepath.Join(root, "test/wasm/testdata/artifact.wat"), out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
})

func needArtifactModule(t *testing.T) []byte {
	t.Helper()
	needBench(t)
	b, err := artifactModule()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unique returns module b with a custom section naming tag: another blob
// (digest) for the same code, so that husk's module store has not seen it.
func unique(b []byte, tag string) []byte {
	name := []byte(tag)
	if len(name) > 100 {
		name = name[:100]
	}
	out := append([]byte{}, b...)
	out = append(out, 0, byte(1+len(name)), byte(len(name)))
	return append(out, name...)
}

// importArtifact writes artifact a as image ref and imports it.
func importArtifact(t *testing.T, ref string, a devenv.Artifact) {
	t.Helper()
	tarPath := filepath.Join(suite.Dir, "artifacts", strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := devenv.ArtifactImage(tarPath, ref, a); err != nil {
		t.Fatal(err)
	}
	if err := bench.ImportArtifact(testCtx(t), tarPath, ref); err != nil {
		t.Fatal(err)
	}
}

// artifactRef is an image name unique to the test.
func artifactRef(t *testing.T, suffix string) string {
	return "husk.local/artifact/" + name(t, suffix) + ":latest"
}

// TestArtifactRun: an artifact image runs through ctr with its entrypoint;
// path#func runs another export; a layer titled as args[0] is chosen among
// several.
func TestArtifactRun(t *testing.T) {
	mod := needArtifactModule(t)
	ref := artifactRef(t, "")
	importArtifact(t, ref, devenv.Artifact{
		Config: ocispec.ImageConfig{Entrypoint: []string{"/art.wasm"}},
		Layers: []devenv.ArtifactLayer{
			{Data: modules["hello"], Title: "other.wasm"},
			{MediaType: devenv.MediaTypeWasmLayer, Data: mod, Title: "art.wasm"},
		},
	})
	if r := ctrRunImage(t, "", ref, nil); r.code != 3 || r.stdout != "artifact\n" {
		t.Errorf("ctr run %s: exit %d, stdout %q, stderr %q; want 3 and \"artifact\\n\"", ref, r.code, r.stdout, r.stderr)
	}
	if r := ctrRunImage(t, "", ref, nil, "/art.wasm#hello"); r.code != 0 || r.stdout != "hello\n" {
		t.Errorf("ctr run %s /art.wasm#hello: exit %d, stdout %q, stderr %q", ref, r.code, r.stdout, r.stderr)
	}
	// No title matches: the first module layer.
	if r := ctrRunImage(t, "", ref, nil, "/whatever.wasm"); r.code != 0 || r.stdout != "hello from wasm\n" {
		t.Errorf("ctr run %s /whatever.wasm: exit %d, stdout %q, stderr %q; want the first layer's hello", ref, r.code, r.stdout, r.stderr)
	}
	// crun's annotation asks for Wasm outright (no smart detection).
	if r := ctrRunImage(t, "", ref, []string{"--annotation", "io.husk.handler=wasm"}); r.code != 3 || r.stdout != "artifact\n" {
		t.Errorf("ctr run io.husk.handler=wasm %s: exit %d, stdout %q, stderr %q", ref, r.code, r.stdout, r.stderr)
	}
}

// TestArtifactExec: an exec in an artifact container runs the image's
// module by the container's name for it, with another export.
func TestArtifactExec(t *testing.T) {
	mod := needArtifactModule(t)
	ref := artifactRef(t, "")
	importArtifact(t, ref, devenv.Artifact{
		Config: ocispec.ImageConfig{Entrypoint: []string{"/art.wasm"}},
		Layers: []devenv.ArtifactLayer{{Data: mod, Title: "art.wasm"}},
	})
	s := startImage(t, ref, name(t, ""), []string{"/art.wasm#sleep"})
	_, ctx := newClient(t)
	spec, err := s.task.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		out  string
		code uint32
	}{
		{[]string{"/art.wasm#hello"}, "hello\n", 0},
		{[]string{"/art.wasm"}, "artifact\n", 3},
		{[]string{"/dev/.husk/wasm-module#hello"}, "hello\n", 0},
	} {
		out, code := execIn(t, ctx, s, spec.Process, tt.args)
		if out != tt.out || code != tt.code {
			t.Errorf("exec %v: %q, exit %d; want %q, exit %d", tt.args, out, code, tt.out, tt.code)
		}
	}
}

// execIn runs args as an exec of s (with proc's environment) and returns
// its output and exit code.
func execIn(t *testing.T, ctx context.Context, s started, proc *specs.Process, args []string) (string, uint32) {
	t.Helper()
	ps := *proc
	ps.Args = args
	ps.Terminal = false
	var out testclient.SyncBuffer
	id := name(t, fmt.Sprint(time.Now().UnixNano()%100000))
	p, err := s.task.Exec(ctx, id, &ps, cio.NewCreator(cio.WithStreams(nil, &out, &out)))
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	defer p.Delete(ctx)
	ch, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatalf("start exec %v: %v", args, err)
	}
	select {
	case st := <-ch:
		time.Sleep(100 * time.Millisecond) // the output copier may still be draining
		return out.String(), st.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("exec %v did not exit", args)
	}
	return "", 0
}

// TestArtifactBad: a layer that cannot be run fails at create, through ctr,
// with an error that says why; nothing is left behind: no cache view, no
// half-fetched or unverified module in husk's store.
func TestArtifactBad(t *testing.T) {
	mod := needArtifactModule(t)
	tests := []struct {
		name    string
		layer   devenv.ArtifactLayer
		corrupt bool // overwrite the blob in containerd's store after the import
		want    string
	}{
		{"component", devenv.ArtifactLayer{MediaType: devenv.MediaTypeWasmComponent, Data: []byte("\x00asm\x0d\x00\x01\x00")}, false,
			"a Wasm component (component model), not a core module"},
		{"not wasm", devenv.ArtifactLayer{Data: []byte("#!/bin/sh\necho native\n")}, false, "is not a Wasm module"},
		{"bad import", devenv.ArtifactLayer{Data: modules["badimport"]}, false, "imports function env.husk_missing_function"},
		{"oversize", devenv.ArtifactLayer{Data: unique(mod, name(t, "big")), Size: 2 << 30}, false, "more than the 1073741824 bytes husk reads"},
		{"digest mismatch", devenv.ArtifactLayer{Data: unique(mod, name(t, "corrupt"))}, true, "do not match its digest"},
	}
	var bad []digest.Digest
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := artifactRef(t, "")
			tt.layer.Title = "art.wasm"
			importArtifact(t, ref, devenv.Artifact{
				Config: ocispec.ImageConfig{Entrypoint: []string{"/art.wasm"}},
				Layers: []devenv.ArtifactLayer{tt.layer},
			})
			d := digest.FromBytes(tt.layer.Data)
			if tt.corrupt || tt.layer.Size != 0 {
				bad = append(bad, d)
			}
			if tt.corrupt {
				// Same size, other bytes: only the digest can tell.
				b := append([]byte{}, tt.layer.Data...)
				b[len(b)-1] ^= 0xff
				if err := os.WriteFile(bench.ContentBlob(d), b, 0o444); err != nil {
					t.Fatal(err)
				}
			}
			for _, flags := range [][]string{nil, {"--annotation", "io.husk.handler=wasm"}} {
				r := ctrRunImage(t, "", ref, flags)
				t.Logf("ctr run %v: %s", flags, strings.TrimSpace(r.stderr))
				if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
					t.Errorf("ctr run %v %s: exit %d, stderr %q; want a failure saying %q", flags, ref, r.code, r.stderr, tt.want)
				}
			}
		})
	}
	// The oversize and the corrupt layers are never stored.
	if l := leftovers(t, bad...); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	if r := ctrRun(t, "", nil, "/bin/hello.wasm"); r.code != 0 || r.stdout != "hello from wasm\n" {
		t.Fatalf("a good module after the bad ones: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestArtifactNoImage: a container with an empty rootfs and no image
// recorded gets the clear "not found" error when Wasm is asked for, and
// runs natively (failing as any missing program does) otherwise.
func TestArtifactNoImage(t *testing.T) {
	mod := needArtifactModule(t)
	ref := artifactRef(t, "")
	importArtifact(t, ref, devenv.Artifact{
		Config: ocispec.ImageConfig{Entrypoint: []string{"/art.wasm"}},
		Layers: []devenv.ArtifactLayer{{Data: mod, Title: "art.wasm"}},
	})
	cl, ctx := newClient(t)
	img, err := cl.GetImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ann  map[string]string
		want string
	}{
		{map[string]string{"io.husk.handler": "wasm"}, "/art.wasm: not found in the container: not found (container"},
		{nil, "no such file or directory"},
	} {
		id := name(t, fmt.Sprint(len(tt.ann)))
		c, err := cl.NewContainer(ctx, id,
			containerd.WithNewSnapshot(id+"-snap", img),
			// WithNewSnapshot records the image: forget it.
			func(_ context.Context, _ *containerd.Client, c *containers.Container) error {
				c.Image = ""
				return nil
			},
			containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithAnnotations(tt.ann)),
			containerd.WithRuntime(husk, nil))
		if err != nil {
			t.Fatalf("new container: %v", err)
		}
		task, err := c.NewTask(ctx, cio.NullIO)
		if err == nil {
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
			t.Errorf("%v: a task was created", tt.ann)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v; want an error saying %q", tt.ann, err, tt.want)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			t.Errorf("container delete: %v", err)
		}
	}
	if l := leftovers(t); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestArtifactWasmConfig: an artifact whose configuration is the CNCF wasm
// artifact's (application/vnd.wasm.config.v0+json) imports, and husk runs
// it given the program's arguments. ctr run cannot read such a
// configuration (containerd's client refuses it), so the spec is built
// without it, as other clients may.
func TestArtifactWasmConfig(t *testing.T) {
	mod := needArtifactModule(t)
	ref := artifactRef(t, "")
	importArtifact(t, ref, devenv.Artifact{
		ConfigMediaType: devenv.MediaTypeWasmConfig,
		Layers:          []devenv.ArtifactLayer{{Data: mod, Title: "art.wasm"}},
	})
	cl, ctx := newClient(t)
	img, err := cl.GetImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	id := name(t, "")
	c, err := cl.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id+"-snap", img),
		containerd.WithNewSpec(oci.WithProcessArgs("/art.wasm")),
		containerd.WithRuntime(husk, nil))
	if err != nil {
		t.Fatalf("new container: %v", err)
	}
	defer c.Delete(ctx, containerd.WithSnapshotCleanup)
	var out testclient.SyncBuffer
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &out, &out)))
	if err != nil {
		t.Fatalf("new task: %v", err)
	}
	defer task.Delete(ctx, containerd.WithProcessKill)
	ch, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-ch:
		time.Sleep(100 * time.Millisecond)
		if st.ExitCode() != 3 || out.String() != "artifact\n" {
			t.Errorf("exit %d, output %q; want 3 and \"artifact\\n\"", st.ExitCode(), out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not exit")
	}
}

// leftovers lists what failed artifact containers of test t may have left:
// cache views, temporary fetches, stored modules of digests ds.
func leftovers(t *testing.T, ds ...digest.Digest) []string {
	var found []string
	views := filepath.Join(wasm.DefaultCacheDir, "containers", bench.Namespace)
	ents, _ := os.ReadDir(views)
	prefix := name(t, "")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			found = append(found, filepath.Join(views, e.Name()))
		}
	}
	store := filepath.Join(wasm.DefaultCacheDir, "modules", "sha256")
	ents, _ = os.ReadDir(store)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".fetch-") {
			found = append(found, filepath.Join(store, e.Name()))
		}
	}
	for _, d := range ds {
		if _, err := os.Stat(filepath.Join(store, d.Encoded())); err == nil {
			found = append(found, "stored module "+d.String())
		}
	}
	return found
}
