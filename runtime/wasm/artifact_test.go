package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/wasm/ociimage"
)

// blobStore is an ociimage.Store holding blobs only, counting reads.
type blobStore struct {
	blobs map[digest.Digest][]byte
	reads int
}

func (*blobStore) ImageOf(context.Context, string) (string, error) { return "", errdefs.ErrNotFound }
func (*blobStore) Target(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errdefs.ErrNotFound
}

func (s *blobStore) Open(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	s.reads++
	b, ok := s.blobs[d.Digest]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// TestLoadLayer: a layer is fetched once into the store, checked; a damaged
// entry is fetched again; a bad blob leaves nothing behind.
func TestLoadLayer(t *testing.T) {
	dir := t.TempDir()
	h := &Handler{cache: &cache{dir: dir}}
	mod := []byte("\x00asm\x01\x00\x00\x00")
	d := digest.FromBytes(mod)
	st := &blobStore{blobs: map[digest.Digest][]byte{d: mod}}
	m := ociimage.Module{Image: "img", Layer: ocispec.Descriptor{MediaType: ociimage.MediaTypeWasm, Digest: d, Size: int64(len(mod))}}
	ctx := context.Background()

	path, b, err := h.loadLayer(ctx, st, m)
	if err != nil || !bytes.Equal(b, mod) || path != filepath.Join(dir, modulesDir, "sha256", d.Encoded()) {
		t.Fatalf("loadLayer: %s, %q, %v", path, b, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("stored module: %v, %v", fi, err)
	}
	if _, _, err := h.loadLayer(ctx, st, m); err != nil || st.reads != 1 {
		t.Fatalf("second load: %v, %d reads of the store; want a hit", err, st.reads)
	}
	// Damaged on disk: fetched again.
	if err := os.WriteFile(path, []byte("\x00asm\x01\x00\x00\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, b, err := h.loadLayer(ctx, st, m); err != nil || !bytes.Equal(b, mod) || st.reads != 2 {
		t.Fatalf("load of a damaged entry: %q, %v, %d reads", b, err, st.reads)
	}

	// The store's bytes do not match the digest: nothing is kept.
	bad := []byte("\x00asm\x01\x00\x00\x02")
	bd := digest.FromBytes(bad)
	st.blobs[bd] = []byte("\x00asm\x01\x00\x00\x03")
	mb := ociimage.Module{Image: "img", Layer: ocispec.Descriptor{MediaType: ociimage.MediaTypeWasm, Digest: bd, Size: int64(len(bad))}}
	if _, _, err := h.loadLayer(ctx, st, mb); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("corrupt blob: %v; want data loss", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, modulesDir, "sha256"))
	if len(ents) != 1 || ents[0].Name() != d.Encoded() {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("store holds %v; want only %s", names, d.Encoded())
	}
}

// TestFromImageWithoutContainerd: with no containerd to ask, a smart
// container runs natively and a Wasm one gets the rootfs's "not found".
func TestFromImageWithoutContainerd(t *testing.T) {
	notFound := fmt.Errorf("wasm module /a.wasm: not found in the container: %w", errdefs.ErrNotFound)
	req := &handler.CreateRequest{ID: "c1", Namespace: "ns"}
	proc := &specs.Process{Args: []string{"/a.wasm"}}
	h := &Handler{cache: &cache{dir: t.TempDir()}}
	if m, err := (&program{h: h, smart: true}).fromImage(context.Background(), req, proc, notFound); m != nil || err != nil {
		t.Errorf("smart: %v, %v; want nothing (native)", m, err)
	}
	m, err := (&program{h: h}).fromImage(context.Background(), req, proc, notFound)
	if m != nil || !errors.Is(err, errdefs.ErrNotFound) || !strings.HasPrefix(err.Error(), notFound.Error()) {
		t.Errorf("wasm: %v, %v; want %v", m, err, notFound)
	}
}

// TestArtifactExecNames: an exec runs the image's module by the container's
// args[0] or the layer's title, with #func; other names are not its.
func TestArtifactExecNames(t *testing.T) {
	host := filepath.Join(t.TempDir(), "m")
	if err := os.WriteFile(host, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &program{privDir: privDirDev, artifact: &artifact{file: "/app/run.wasm", title: "app.wasm", host: host}}
	for arg0, want := range map[string]string{
		"/app/run.wasm":     "",
		"/app/run.wasm#f":   "f",
		"app.wasm#g":        "g",
		"/x/app.wasm":       "",
		"/other.wasm":       "-",
		"/app/run.wasm.bak": "-",
	} {
		m, err := p.artifactExec(&specs.Process{Args: []string{arg0, "x"}})
		switch {
		case err != nil:
			t.Errorf("%s: %v", arg0, err)
		case want == "-" && m != nil:
			t.Errorf("%s: ran the image's module", arg0)
		case want != "-" && (m == nil || m.fn != want || m.path != "/dev/.husk/wasm-module" || len(m.args) != 2):
			t.Errorf("%s: %+v; want func %q", arg0, m, want)
		}
	}
}

// TestStaleFetchesRemoved: a fetch a dead shim left is removed by the next
// fetch once it is older than any fetch may take; a recent one is kept.
func TestStaleFetchesRemoved(t *testing.T) {
	dir := t.TempDir()
	old, recent := filepath.Join(dir, fetchPrefix+"1"), filepath.Join(dir, fetchPrefix+"2")
	for _, f := range []string{old, recent} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-3 * imageTimeout)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	removeStaleFetches(dir)
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale fetch kept: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent fetch removed: %v", err)
	}
}
