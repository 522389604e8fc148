package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Wasm OCI artifacts (a layer that is a module or a
// component, and the CNCF wasm artifact's configuration).
const (
	MediaTypeWasm          = "application/wasm"
	MediaTypeWasmLayer     = "application/vnd.wasm.content.layer.v1+wasm"
	MediaTypeWasmComponent = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"
	MediaTypeWasmConfig    = "application/vnd.wasm.config.v0+json"
)

// WasmPlatform is the platform of a Wasm artifact image as WASI preview1
// toolchains (and runwasi) label it.
var WasmPlatform = ocispec.Platform{OS: "wasip1", Architecture: "wasm"}

// ArtifactLayer is one layer of an artifact image: a blob that is not a tar
// archive (a Wasm module, say).
type ArtifactLayer struct {
	MediaType string // MediaTypeWasm when empty
	Data      []byte
	// Title, if set, is the layer's org.opencontainers.image.title
	// annotation (the module's file name).
	Title string
	// Size, if not zero, is the size the manifest claims instead of
	// len(Data) (to test readers against a lying manifest).
	Size int64
}

// Artifact describes an OCI artifact image (ArtifactImage).
type Artifact struct {
	// ConfigMediaType is the configuration's media type: the OCI image
	// configuration when empty, which is what `ctr run` can read.
	ConfigMediaType string
	// Config is the configuration's container part (Entrypoint, Cmd,
	// Env...), for an OCI image configuration.
	Config ocispec.ImageConfig
	Layers []ArtifactLayer
}

// ArtifactImage writes an OCI image-layout tarball to tarPath: an index
// naming ref, whose one manifest (platform WasmPlatform) has a's
// configuration and layers. The layers are not tar archives, so containerd
// unpacks the image to an empty rootfs.
func ArtifactImage(tarPath, ref string, a Artifact) error {
	blobs := map[digest.Digest][]byte{}
	add := func(mediaType string, b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	}
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, l := range a.Layers {
		mt := l.MediaType
		if mt == "" {
			mt = MediaTypeWasm
		}
		d := add(mt, l.Data)
		if l.Size != 0 {
			d.Size = l.Size
		}
		if l.Title != "" {
			d.Annotations = map[string]string{ocispec.AnnotationTitle: l.Title}
		}
		layers = append(layers, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	var cfgDesc ocispec.Descriptor
	switch a.ConfigMediaType {
	case "", ocispec.MediaTypeImageConfig:
		b, err := json.Marshal(ocispec.Image{
			Platform: WasmPlatform,
			Config:   a.Config,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
		})
		if err != nil {
			return fmt.Errorf("devenv: %w", err)
		}
		cfgDesc = add(ocispec.MediaTypeImageConfig, b)
	default:
		// The CNCF wasm artifact's configuration: no process, just what
		// the module is.
		b, err := json.Marshal(map[string]any{
			"architecture": WasmPlatform.Architecture,
			"os":           WasmPlatform.OS,
			"layerDigests": diffIDs,
		})
		if err != nil {
			return fmt.Errorf("devenv: %w", err)
		}
		cfgDesc = add(a.ConfigMediaType, b)
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    layers,
	})
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	manDesc := add(ocispec.MediaTypeImageManifest, manifest)
	platform := WasmPlatform
	manDesc.Platform = &platform
	return writeLayout(tarPath, ref, blobs, manDesc)
}

// ImportArtifact imports the artifact image tarPath (ArtifactImage) into
// the bench's Namespace as a user would: `ctr images import --platform
// wasip1/wasm --no-unpack` (containerd imports only the host's platform
// otherwise, which an artifact lacks, and has no snapshotter that unpacks
// wasip1/wasm: `ctr run` prepares the empty rootfs itself). It checks that
// ref came out of it.
func (c *Containerd) ImportArtifact(ctx context.Context, tarPath, ref string) error {
	return c.ImportArtifactInto(ctx, c.Namespace, tarPath, ref)
}

// ImportArtifactInto is ImportArtifact into namespace ns (CRINamespace for
// crictl).
func (c *Containerd) ImportArtifactInto(ctx context.Context, ns, tarPath, ref string) error {
	// No snapshotter unpacks wasip1/wasm: ctr run prepares the empty
	// rootfs itself.
	return c.importFor(ctx, ns, tarPath, ref, WasmPlatform, false)
}

// ContentBlob is the file holding blob d in the bench's content store (to
// corrupt it in a test: containerd trusts its store, readers must not).
func (c *Containerd) ContentBlob(d digest.Digest) string {
	return filepath.Join(c.Dir, "root", "io.containerd.content.v1.content", "blobs", d.Algorithm().String(), d.Encoded())
}
