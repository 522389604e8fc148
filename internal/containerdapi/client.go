// Package containerdapi is the shim's client of containerd's gRPC API: the
// generated clients of the few services husk reads (containers, images,
// content), not containerd's client package, which would pull most of
// containerd into the shim. The Wasm handler reads an artifact's module
// through it, and the shim a container's image for the hooks' events.
package containerdapi

import (
	"context"
	"errors"
	"fmt"
	"io"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Client reads containerd's records and content in one namespace (it is
// an ociimage.Store).
type Client struct {
	conn       *grpc.ClientConn
	namespace  string
	containers containersapi.ContainersClient
	images     imagesapi.ImagesClient
	content    contentapi.ContentClient
}

// Dial returns a client of the containerd at address (a unix socket path,
// the shim's -address) for namespace. It connects on first use.
func Dial(address, namespace string) (*Client, error) {
	if address == "" {
		return nil, fmt.Errorf("no containerd address: %w", errdefs.ErrFailedPrecondition)
	}
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", address, err)
	}
	return &Client{
		conn:       conn,
		namespace:  namespace,
		containers: containersapi.NewContainersClient(conn),
		images:     imagesapi.NewImagesClient(conn),
		content:    contentapi.NewContentClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.namespace)
}

// ImageOf returns the image name containerd recorded for container id: ""
// when the record names none (ctr run --rootfs, and every container the
// CRI creates: it keeps the image in its own metadata).
func (c *Client) ImageOf(ctx context.Context, id string) (string, error) {
	r, err := c.containers.Get(c.ctx(ctx), &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		return "", errgrpc.ToNative(err)
	}
	return r.GetContainer().GetImage(), nil
}

// Target returns the descriptor image name points to.
func (c *Client) Target(ctx context.Context, name string) (ocispec.Descriptor, error) {
	r, err := c.images.Get(c.ctx(ctx), &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		return ocispec.Descriptor{}, errgrpc.ToNative(err)
	}
	t := r.GetImage().GetTarget()
	if t == nil {
		return ocispec.Descriptor{}, fmt.Errorf("no target: %w", errdefs.ErrNotFound)
	}
	return ocispec.Descriptor{
		MediaType:   t.GetMediaType(),
		Digest:      digest.Digest(t.GetDigest()),
		Size:        t.GetSize(),
		Annotations: t.GetAnnotations(),
	}, nil
}

// Open streams the blob of desc from the content service.
func (c *Client) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(c.ctx(ctx))
	s, err := c.content.Read(ctx, &contentapi.ReadContentRequest{Digest: desc.Digest.String()})
	if err != nil {
		cancel()
		return nil, errgrpc.ToNative(err)
	}
	return &blobReader{s: s, cancel: cancel}, nil
}

// blobReader is the content service's Read stream as an io.Reader.
type blobReader struct {
	s      contentapi.Content_ReadClient
	cancel context.CancelFunc
	buf    []byte
}

func (r *blobReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		m, err := r.s.Recv()
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		if err != nil {
			return 0, errgrpc.ToNative(err)
		}
		r.buf = m.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close ends the stream (the server stops sending).
func (r *blobReader) Close() error {
	r.cancel()
	return nil
}
