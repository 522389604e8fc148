package ociimage

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is what Find and Fetch read from containerd: containerdapi.Client
// in the shim.
type Store interface {
	// ImageOf returns the image name recorded for container id, "" if
	// it has none (ctr run --rootfs).
	ImageOf(ctx context.Context, id string) (string, error)
	// Target returns the descriptor image name points to.
	Target(ctx context.Context, name string) (ocispec.Descriptor, error)
	// Open reads the blob of desc as the store has it: unchecked.
	Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Module is the Wasm layer Find chose in a container's image.
type Module struct {
	Image string // the image's name
	Layer ocispec.Descriptor
}

// Component reports whether the layer is a Wasm component, which husk
// loads only to refuse.
func (m Module) Component() bool { return m.Layer.MediaType == MediaTypeComponent }

// Title is the layer's org.opencontainers.image.title annotation (its file
// name), or "".
func (m Module) Title() string { return m.Layer.Annotations[ocispec.AnnotationTitle] }

// maxDepth bounds how many indexes Find follows down to a manifest.
const maxDepth = 4

// Find finds the module of container id in its image: container → image
// name → target → (index → the Wasm platform's manifest, or the only one)
// → the module layer (selectLayer, by file, args[0] without "#func"). A
// container without an image, or an image without a Wasm layer, is
// ErrNotFound.
func Find(ctx context.Context, st Store, id, file string) (Module, error) {
	name, err := st.ImageOf(ctx, id)
	if err != nil {
		return Module{}, fmt.Errorf("container %s: %w", id, err)
	}
	if name == "" {
		return Module{}, fmt.Errorf("container %s has no image: %w", id, errdefs.ErrNotFound)
	}
	desc, err := st.Target(ctx, name)
	if err != nil {
		return Module{}, fmt.Errorf("image %s: %w", name, err)
	}
	for depth := 0; ; depth++ {
		switch {
		case isManifest(desc.MediaType):
			b, err := readSmall(ctx, st, desc)
			if err != nil {
				return Module{}, fmt.Errorf("image %s: manifest: %w", name, err)
			}
			l, err := selectLayer(b, file)
			if err != nil {
				return Module{}, fmt.Errorf("image %s: %w", name, err)
			}
			return Module{Image: name, Layer: l}, nil
		case isIndex(desc.MediaType) && depth < maxDepth:
			b, err := readSmall(ctx, st, desc)
			if err != nil {
				return Module{}, fmt.Errorf("image %s: index: %w", name, err)
			}
			if desc, err = selectManifest(b); err != nil {
				return Module{}, fmt.Errorf("image %s: %w", name, err)
			}
		case isIndex(desc.MediaType):
			return Module{}, fmt.Errorf("image %s: indexes nested more than %d deep: %w", name, maxDepth, errdefs.ErrInvalidArgument)
		default:
			return Module{}, fmt.Errorf("image %s: %s is neither an index nor a manifest: %w", name, desc.MediaType, errdefs.ErrNotFound)
		}
	}
}

// readSmall reads an index or manifest, checked and bounded.
func readSmall(ctx context.Context, st Store, desc ocispec.Descriptor) ([]byte, error) {
	var b bytes.Buffer
	if err := Fetch(ctx, st, desc, maxIndexSize, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Fetch copies the blob of desc to w, refusing a descriptor larger than max
// unread and failing (ErrDataLoss) if the store's bytes are not exactly
// desc.Size bytes of digest desc.Digest. w has seen every byte by then:
// whoever keeps them must wait for Fetch's verdict.
func Fetch(ctx context.Context, st Store, desc ocispec.Descriptor, max int64, w io.Writer) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob digest %q: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if desc.Size < 0 || desc.Size > max {
		return fmt.Errorf("blob %s is %d bytes, more than the %d bytes husk reads: %w", desc.Digest, desc.Size, max, errdefs.ErrInvalidArgument)
	}
	rc, err := st.Open(ctx, desc)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	v := desc.Digest.Verifier()
	n, err := io.Copy(io.MultiWriter(w, v), io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if n != desc.Size {
		more := "only"
		if n > desc.Size {
			more = "more than"
		}
		return fmt.Errorf("blob %s: the content store holds %s %d bytes, its descriptor says %d: %w", desc.Digest, more, min(n, desc.Size), desc.Size, errdefs.ErrDataLoss)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: the content store's bytes do not match its digest (corrupt content): %w", desc.Digest, errdefs.ErrDataLoss)
	}
	return nil
}
