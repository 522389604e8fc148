package wasm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/containerdapi"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/wasm/ociimage"
)

// moduleName is where a module from the image's layers (a Wasm OCI
// artifact) appears in the container, below the private directory.
const moduleName = "wasm-module"

// modulesDir is the cache's directory of modules taken from images' layers,
// stored by digest (modules/sha256/<hex>): verified once when fetched,
// shared by every container that runs them, bind-mounted read-only.
const modulesDir = "modules"

// imageTimeout bounds the look into the image and the fetch of its module
// (a gigabyte from a local content store takes seconds): the create's
// context has no deadline of its own.
const imageTimeout = 2 * time.Minute

// artifact is the module of a container whose image is a Wasm OCI
// artifact: its rootfs is empty, the module is a layer.
type artifact struct {
	file  string // args[0] without "#func": the name the module runs as
	title string // the layer's title annotation, or ""
	host  string // the stored layer on the host
}

// fromImage is Prepare's way out when args[0] is not in the rootfs
// (notFound says so): the container's image may be a Wasm artifact, whose
// module is a layer. An image without a Wasm layer (or no image) gives
// notFound back, or, for a smart container, nil: it runs natively and fails
// as any container whose program is missing. Once a Wasm layer is found,
// every problem with it is an error, smart or not.
func (p *program) fromImage(ctx context.Context, req *handler.CreateRequest, proc *specs.Process, notFound error) (*module, error) {
	file, fn := splitFunc(proc.Args[0])
	fail := func(err error) (*module, error) {
		if p.smart {
			logging.L(ctx).Debug("no Wasm module in the rootfs or the image", "id", req.ID, "error", err)
			return nil, nil
		}
		return nil, fmt.Errorf("%w (%v)", notFound, err)
	}
	if req.ContainerdAddress == "" {
		return fail(errors.New("no containerd address to look at the image"))
	}
	ctx, cancel := context.WithTimeout(ctx, imageTimeout)
	defer cancel()
	st, err := containerdapi.Dial(req.ContainerdAddress, req.Namespace)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	m, err := ociimage.Find(ctx, st, req.ID, file)
	if errors.Is(err, errdefs.ErrNotFound) {
		return fail(err)
	}
	if err != nil {
		return nil, fmt.Errorf("wasm container %s: %w", req.ID, err)
	}
	host, b, err := p.h.loadLayer(ctx, st, m)
	if err != nil {
		return nil, fmt.Errorf("wasm module of image %s: %w", m.Image, err)
	}
	name := fmt.Sprintf("%s (layer %s of image %s)", file, m.Layer.Digest, m.Image)
	if m.Component() {
		return nil, fmt.Errorf("module %s: %w: %w", name, errComponent, errdefs.ErrInvalidArgument)
	}
	if !slices.Equal(b[:min(len(b), len(magic))], magic) {
		return nil, fmt.Errorf("%s is not a Wasm module (it starts with %q, a module with %q): %w",
			name, b[:min(len(b), len(magic))], magic, errdefs.ErrInvalidArgument)
	}
	if err := checkImports(name, b); err != nil {
		return nil, err
	}
	p.artifact = &artifact{file: file, title: m.Title(), host: host}
	args := slices.Clone(proc.Args)
	args[0] = file
	logging.L(ctx).Debug("wasm module from the image", "id", req.ID, "image", m.Image, "layer", m.Layer.Digest, "title", m.Title())
	// path is set by artifactMount, once the private directory is known.
	return &module{path: name, fn: fn, args: args, wasm: b}, nil
}

// artifactMount adds the bind mount of the container's module when it came
// from the image, and points mod at it.
func (p *program) artifactMount(mounts []specs.Mount, mod *module) []specs.Mount {
	if p.artifact == nil {
		return mounts
	}
	mod.path = path.Join(p.privDir, moduleName)
	return append(mounts, specs.Mount{
		Destination: mod.path,
		Type:        "bind",
		Source:      p.artifact.host,
		Options:     []string{"rbind", "ro", "nosuid", "nodev", "noexec"},
	})
}

// artifactExec is PrepareExec's way out when an exec's args[0] is not in
// the container: the name the image's module runs as (args[0] of the
// container, or the layer's title) runs that module, so that "name#func"
// reaches another export. Anything else is nil: the exec runs natively.
func (p *program) artifactExec(proc *specs.Process) (*module, error) {
	if p.artifact == nil {
		return nil, nil
	}
	file, fn := splitFunc(proc.Args[0])
	a := p.artifact
	if file != a.file && (a.title == "" || path.Base(file) != a.title) {
		return nil, nil
	}
	b, err := readFileModule(a.host)
	if err != nil {
		return nil, fmt.Errorf("wasm module %s: %w", file, err)
	}
	args := slices.Clone(proc.Args)
	args[0] = file
	return &module{path: path.Join(p.privDir, moduleName), fn: fn, args: args, wasm: b}, nil
}

// loadLayer returns the layer of m from the cache's module store, and its
// path there, fetching it on a miss. The bytes returned have been checked
// against the layer's digest (a damaged entry is fetched again); a fetched
// layer is written to a temporary file, checked while it is written, and
// only then renamed into place.
func (h *Handler) loadLayer(ctx context.Context, st ociimage.Store, m ociimage.Module) (string, []byte, error) {
	d := m.Layer.Digest
	if err := d.Validate(); err != nil {
		return "", nil, fmt.Errorf("layer digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Join(h.cache.dir, modulesDir, d.Algorithm().String())
	dst := filepath.Join(dir, d.Encoded())
	for try := 0; ; try++ {
		b, err := readFileModule(dst)
		switch {
		case err == nil && int64(len(b)) == m.Layer.Size && digest.FromBytes(b) == d:
			return dst, b, nil
		case err == nil:
			if err := os.Remove(dst); err != nil {
				return "", nil, fmt.Errorf("wasm module store: removing damaged %s: %w", dst, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return "", nil, fmt.Errorf("wasm module store: %w", err)
		}
		if try > 0 {
			return "", nil, fmt.Errorf("wasm module store: %s changed under husk: %w", dst, errdefs.ErrDataLoss)
		}
		if err := h.fetchLayer(ctx, st, m.Layer, dir, dst); err != nil {
			return "", nil, err
		}
	}
}

// fetchLayer fetches layer into the store at dst (in dir).
func (h *Handler) fetchLayer(ctx context.Context, st ociimage.Store, layer ocispec.Descriptor, dir, dst string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("wasm module store: %w", err)
	}
	removeStaleFetches(dir)
	tmp, err := os.CreateTemp(dir, fetchPrefix+"*")
	if err != nil {
		return fmt.Errorf("wasm module store: %w", err)
	}
	defer os.Remove(tmp.Name()) // nothing left to remove after the rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = ociimage.Fetch(ctx, st, layer, maxModuleSize, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err // Fetch names the blob
	}
	// 0644: bind-mounted read-only into containers whose user is anyone;
	// the cache's 0700 directories keep the host's users out.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("wasm module store: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("wasm module store: %w", err)
	}
	logging.L(ctx).Debug("wasm module stored", "layer", layer.Digest, "size", layer.Size)
	return nil
}

// fetchPrefix starts the name of a layer being fetched into the store.
const fetchPrefix = ".fetch-"

// removeStaleFetches removes what shims killed in the middle of a fetch
// left in dir: temporary files older than any fetch may take (a live one is
// written to until its context's deadline).
func removeStaleFetches(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), fetchPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 2*imageTimeout {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// readFileModule reads a stored module, bounded.
func readFileModule(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readModule(f)
}
