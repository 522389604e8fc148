package ociimage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeStore is a content store in memory: containers' images, images'
// targets and blobs by digest, which a test may corrupt.
type fakeStore struct {
	images  map[string]string // container id → image name
	targets map[string]ocispec.Descriptor
	blobs   map[digest.Digest][]byte
}

func newFakeStore() *fakeStore {
	return &fakeStore{images: map[string]string{}, targets: map[string]ocispec.Descriptor{}, blobs: map[digest.Digest][]byte{}}
}

func (s *fakeStore) ImageOf(_ context.Context, id string) (string, error) {
	n, ok := s.images[id]
	if !ok {
		return "", errdefs.ErrNotFound
	}
	return n, nil
}

func (s *fakeStore) Target(_ context.Context, name string) (ocispec.Descriptor, error) {
	d, ok := s.targets[name]
	if !ok {
		return d, errdefs.ErrNotFound
	}
	return d, nil
}

func (s *fakeStore) Open(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := s.blobs[desc.Digest]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// add stores b and returns its descriptor.
func (s *fakeStore) add(mediaType string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	s.blobs[d] = b
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (s *fakeStore) addJSON(t *testing.T, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return s.add(mediaType, b)
}

func layer(s *fakeStore, mediaType, data, title string) ocispec.Descriptor {
	d := s.add(mediaType, []byte(data))
	if title != "" {
		d.Annotations = map[string]string{ocispec.AnnotationTitle: title}
	}
	return d
}

func manifest(t *testing.T, s *fakeStore, layers ...ocispec.Descriptor) ocispec.Descriptor {
	cfg := s.add("application/vnd.wasm.config.v0+json", []byte(`{}`))
	return s.addJSON(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
}

func index(t *testing.T, s *fakeStore, ms ...ocispec.Descriptor) ocispec.Descriptor {
	return s.addJSON(t, ocispec.MediaTypeImageIndex, ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ms})
}

func onPlatform(d ocispec.Descriptor, os, arch string) ocispec.Descriptor {
	d.Platform = &ocispec.Platform{OS: os, Architecture: arch}
	return d
}

func TestFind(t *testing.T) {
	s := newFakeStore()
	tar := layer(s, ocispec.MediaTypeImageLayerGzip, "a tar", "")
	mod := layer(s, MediaTypeWasm, "\x00asm module", "")
	named := layer(s, MediaTypeWasmLayer, "\x00asm named", "app.wasm")
	comp := layer(s, MediaTypeComponent, "\x00asm component", "")
	linux := manifest(t, s, tar)
	wasmMan := manifest(t, s, tar, mod, named)
	tests := []struct {
		name   string
		target ocispec.Descriptor
		file   string
		want   ocispec.Descriptor
		err    error // errors.Is
		errMsg string
	}{
		{"manifest, first module layer", wasmMan, "/x.wasm", mod, nil, ""},
		{"manifest, title matches the base name", wasmMan, "/some/dir/app.wasm", named, nil, ""},
		{"no title match on an empty name", wasmMan, "", mod, nil, ""},
		{"component layer", manifest(t, s, comp), "/app.wasm", comp, nil, ""},
		{"index: the wasip1/wasm manifest", index(t, s, onPlatform(linux, "linux", "amd64"), onPlatform(wasmMan, "wasip1", "wasm")), "/a", mod, nil, ""},
		{"index: wasi/wasm", index(t, s, onPlatform(linux, "linux", "amd64"), onPlatform(wasmMan, "wasi", "wasm")), "/a", mod, nil, ""},
		{"index: the only manifest", index(t, s, wasmMan), "/a", mod, nil, ""},
		{"nested index", index(t, s, index(t, s, onPlatform(wasmMan, "wasip1", "wasm"))), "/a", mod, nil, ""},
		{"index of other platforms", index(t, s, onPlatform(linux, "linux", "amd64"), onPlatform(linux, "linux", "arm64")), "/a", ocispec.Descriptor{}, errdefs.ErrNotFound, "no manifest for wasip1/wasm"},
		{"no wasm layer", linux, "/a", ocispec.Descriptor{}, errdefs.ErrNotFound, "no Wasm layer"},
		{"target is a layer", mod, "/a", ocispec.Descriptor{}, errdefs.ErrNotFound, "neither an index nor a manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.images["c1"] = "img"
			s.targets["img"] = tt.target
			m, err := Find(context.Background(), s, "c1", tt.file)
			if tt.err != nil || tt.errMsg != "" {
				if !errors.Is(err, tt.err) || !strings.Contains(fmtErr(err), tt.errMsg) {
					t.Fatalf("err %v; want %v saying %q", err, tt.err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Layer.Digest != tt.want.Digest || m.Image != "img" {
				t.Fatalf("found %s of %s; want %s", m.Layer.Digest, m.Image, tt.want.Digest)
			}
			if m.Component() != (tt.want.MediaType == MediaTypeComponent) {
				t.Errorf("Component() = %v for %s", m.Component(), tt.want.MediaType)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestFindNoImage(t *testing.T) {
	s := newFakeStore()
	s.images["c1"] = ""
	if _, err := Find(context.Background(), s, "c1", "/a.wasm"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "has no image") {
		t.Fatalf("err %v; want not found, no image", err)
	}
	if _, err := Find(context.Background(), s, "c2", "/a.wasm"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown container: err %v; want not found", err)
	}
}

// TestFindHostileStore: a store whose index or manifest is not what its
// digest says, or is garbage, or is huge, is an error, never a module.
func TestFindHostileStore(t *testing.T) {
	s := newFakeStore()
	mod := layer(s, MediaTypeWasm, "\x00asm module", "")
	man := manifest(t, s, mod)
	tests := []struct {
		name   string
		target func() ocispec.Descriptor
		err    error
	}{
		{"manifest bytes swapped", func() ocispec.Descriptor {
			d := manifest(t, s, mod)
			b := bytes.Clone(s.blobs[d.Digest])
			b[len(b)-2] = ' '
			s.blobs[d.Digest] = b
			return d
		}, errdefs.ErrDataLoss},
		{"descriptor size lies", func() ocispec.Descriptor { d := man; d.Size--; return d }, errdefs.ErrDataLoss},
		{"index too large", func() ocispec.Descriptor { d := index(t, s, man); d.Size = maxIndexSize + 1; return d }, errdefs.ErrInvalidArgument},
		{"garbage manifest", func() ocispec.Descriptor { return s.add(ocispec.MediaTypeImageManifest, []byte("{not json")) }, errdefs.ErrInvalidArgument},
		{"bad digest", func() ocispec.Descriptor {
			return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../etc/passwd", Size: 3}
		}, errdefs.ErrInvalidArgument},
		{"missing blob", func() ocispec.Descriptor { d := man; d.Digest = digest.FromString("nothing"); return d }, errdefs.ErrNotFound},
		{"index loop", func() ocispec.Descriptor {
			// An index can't hold its own digest, but a deep chain is as
			// good: five indexes down.
			d := index(t, s, man)
			for range maxDepth {
				d = index(t, s, d)
			}
			return d
		}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.images["c1"] = "img"
			s.targets["img"] = tt.target()
			_, err := Find(context.Background(), s, "c1", "/a.wasm")
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v; want %v", err, tt.err)
			}
		})
	}
}

// TestFetch: Fetch hands over exactly the blob, or fails.
func TestFetch(t *testing.T) {
	s := newFakeStore()
	good := s.add(MediaTypeWasm, []byte("\x00asm a module"))
	var out bytes.Buffer
	if err := Fetch(context.Background(), s, good, 100, &out); err != nil || out.String() != "\x00asm a module" {
		t.Fatalf("Fetch: %q, %v", out.String(), err)
	}
	longer := good
	longer.Size -= 2
	short := good
	short.Size += 2
	other := good
	s.blobs[other.Digest] = []byte("\x00asm a modulX")
	for name, tt := range map[string]struct {
		d   ocispec.Descriptor
		max int64
		err error
	}{
		"over the limit":         {good, 5, errdefs.ErrInvalidArgument},
		"negative size":          {ocispec.Descriptor{Digest: good.Digest, Size: -1}, 100, errdefs.ErrInvalidArgument},
		"store has more":         {longer, 100, errdefs.ErrDataLoss},
		"store has less":         {short, 100, errdefs.ErrDataLoss},
		"same size, other bytes": {other, 100, errdefs.ErrDataLoss},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Fetch(context.Background(), s, tt.d, tt.max, io.Discard); !errors.Is(err, tt.err) {
				t.Fatalf("err %v; want %v", err, tt.err)
			}
		})
	}
}
