// Package ociimage finds a container's Wasm module in its image when the
// image is a Wasm OCI artifact: a manifest whose layers are modules
// (application/wasm, the CNCF wasm artifact's
// application/vnd.wasm.content.layer.v1+wasm) or components, not tar
// archives, which containerd therefore unpacks to an empty rootfs. It asks
// containerd's own API (containers, images, content) over the gRPC address
// the shim is given, and trusts nothing it reads: every blob is checked
// against its digest and bounded in size.
package ociimage

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer media types of Wasm artifacts.
const (
	// MediaTypeWasm is a core module (runwasi, wasm-to-oci's layer in
	// most registries).
	MediaTypeWasm = "application/wasm"
	// MediaTypeWasmLayer is a module in the CNCF wasm artifact format
	// (wasm-to-oci).
	MediaTypeWasmLayer = "application/vnd.wasm.content.layer.v1+wasm"
	// MediaTypeComponent is a component (WASI preview2), which husk
	// does not run.
	MediaTypeComponent = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"
)

// Docker's manifest types, which an index may hold next to the OCI ones.
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerIndex    = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxIndexSize bounds an index or manifest read from the content store (a
// manifest of a thousand layers is a few hundred KiB).
const maxIndexSize = 4 << 20

// isWasmLayer reports whether a layer of media type mt is a Wasm module or
// component.
func isWasmLayer(mt string) bool {
	switch mt {
	case MediaTypeWasm, MediaTypeWasmLayer, MediaTypeComponent:
		return true
	}
	return false
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerIndex
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// wasmPlatform reports whether p is a platform Wasm artifacts are labelled
// with: os wasip1 (Go, runwasi) or wasi (older tools), architecture wasm.
func wasmPlatform(p *ocispec.Platform) bool {
	return p != nil && p.Architecture == "wasm" && (p.OS == "wasip1" || p.OS == "wasi")
}

// selectManifest chooses, in an index, the manifest a Wasm container runs:
// the first one for a Wasm platform, or the index's only manifest. Several
// manifests, none of them Wasm, is an error: the image is not an artifact
// (or is one of another platform).
func selectManifest(index []byte) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image index: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var only []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if !isManifest(m.MediaType) && !isIndex(m.MediaType) {
			continue // an attestation, a signature...
		}
		if wasmPlatform(m.Platform) {
			return m, nil
		}
		only = append(only, m)
	}
	switch len(only) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("image index lists no manifest: %w", errdefs.ErrNotFound)
	case 1:
		return only[0], nil
	}
	var plats []string
	for _, m := range only {
		if m.Platform != nil {
			plats = append(plats, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("image index has no manifest for wasip1/wasm (it has %v): %w", plats, errdefs.ErrNotFound)
}

// selectLayer chooses the module among a manifest's layers: the Wasm layer
// whose org.opencontainers.image.title is the base name of file (args[0]
// without "#func"), else the first Wasm layer. A manifest without one is
// ErrNotFound: the image is not a Wasm artifact.
func selectLayer(manifest []byte, file string) (ocispec.Descriptor, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	i := slices.IndexFunc(m.Layers, func(l ocispec.Descriptor) bool { return isWasmLayer(l.MediaType) })
	if i < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("image has no Wasm layer (%s, %s or %s): %w",
			MediaTypeWasm, MediaTypeWasmLayer, MediaTypeComponent, errdefs.ErrNotFound)
	}
	if base := path.Base(file); file != "" && base != "/" && base != "." {
		for _, l := range m.Layers[i:] {
			if isWasmLayer(l.MediaType) && l.Annotations[ocispec.AnnotationTitle] == base {
				return l, nil
			}
		}
	}
	return m.Layers[i], nil
}
