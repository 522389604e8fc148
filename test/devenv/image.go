package devenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/logging"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BusyboxRef is the name ImportBusybox gives the busybox image by default.
const BusyboxRef = "husk.local/busybox:latest"

// tarTime is the modification time of every tar entry, so that the same
// busybox binary always gives the same layer and image digests.
var tarTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// imagePlatform is the platform of the bench's images: the host's, since the
// binaries in them (busybox, pause) are the host's.
func imagePlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// BusyboxImage writes an OCI image-layout tarball for the busybox rootfs to
// tarPath, named ref through the index's org.opencontainers.image.ref.name
// annotation (which `ctr image import` uses as the image name). The image has
// one gzip layer, PATH in its environment and `sh` as its command. The output
// is deterministic for a given busybox binary.
func BusyboxImage(tarPath, ref string) error {
	ents, err := busyboxEntries()
	if err != nil {
		return err
	}
	return writeImage(tarPath, ref, ents, ocispec.ImageConfig{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"sh"},
	})
}

// writeImage writes an OCI image-layout tarball to tarPath: one image for the
// host's platform, named ref, whose only (gzip) layer holds ents and whose
// configuration is cfg. ents must be sorted by path, parents first. The
// output depends on nothing but the arguments.
func writeImage(tarPath, ref string, ents []entry, cfg ocispec.ImageConfig) error {
	layer, diffID, err := buildLayer(ents)
	if err != nil {
		return err
	}
	blobs := map[digest.Digest][]byte{}
	add := func(mediaType string, b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	}
	layerDesc := add(ocispec.MediaTypeImageLayerGzip, layer)

	cfgJSON, err := json.Marshal(ocispec.Image{
		Platform: imagePlatform(),
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	cfgDesc := add(ocispec.MediaTypeImageConfig, cfgJSON)

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	manDesc := add(ocispec.MediaTypeImageManifest, manifest)
	platform := imagePlatform()
	manDesc.Platform = &platform
	return writeLayout(tarPath, ref, blobs, manDesc)
}

// writeLayout writes an OCI image-layout tarball to tarPath holding blobs
// and an index of the one manifest man (whose blob is among blobs), named
// ref.
func writeLayout(tarPath, ref string, blobs map[digest.Digest][]byte, man ocispec.Descriptor) error {
	man.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{man},
	})
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}

	files := []entry{
		{path: "blobs", mode: fs.ModeDir | 0o755},
		{path: "blobs/sha256", mode: fs.ModeDir | 0o755},
		{path: ocispec.ImageIndexFile, mode: 0o644, data: index},
		{path: ocispec.ImageLayoutFile, mode: 0o644, data: layout},
	}
	for d, b := range blobs {
		files = append(files, entry{path: "blobs/sha256/" + d.Encoded(), mode: 0o644, data: b})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	var out bytes.Buffer
	if err := writeTar(&out, files); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	return writeFileAtomic(tarPath, out.Bytes(), 0o644)
}

// buildLayer returns the gzip-compressed tar of ents and its diff ID, the
// digest of the uncompressed tar.
func buildLayer(ents []entry) (layer []byte, diffID digest.Digest, err error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, "", fmt.Errorf("devenv: %w", err)
	}
	h := sha256.New()
	if err := writeTar(io.MultiWriter(zw, h), ents); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("devenv: gzip layer: %w", err)
	}
	return gz.Bytes(), digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}

// writeTar writes ents, in order, as a tar stream owned by root with fixed
// times.
func writeTar(w io.Writer, ents []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range ents {
		hdr := &tar.Header{
			Name:    e.path,
			Mode:    int64(e.mode.Perm()),
			ModTime: tarTime,
		}
		if e.mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000 // c_ISVTX
		}
		switch {
		case e.mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.target
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("devenv: tar %s: %w", e.path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("devenv: tar %s: %w", e.path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("devenv: tar: %w", err)
	}
	return nil
}

// ImportBusybox builds the busybox image into Dir and imports it as ref
// (BusyboxRef when empty) into the bench's Namespace, unpacked for the
// default snapshotter, so that `ctr run ref ...` works.
func (c *Containerd) ImportBusybox(ctx context.Context, ref string) error {
	return c.ImportBusyboxInto(ctx, c.Namespace, ref)
}

// ImportBusyboxInto is ImportBusybox into namespace ns; CRINamespace makes
// the image usable by `crictl create`.
func (c *Containerd) ImportBusyboxInto(ctx context.Context, ns, ref string) error {
	if ref == "" {
		ref = BusyboxRef
	}
	t0 := time.Now()
	tarPath := filepath.Join(c.Dir, "busybox.tar")
	if err := BusyboxImage(tarPath, ref); err != nil {
		return err
	}
	if err := c.importImage(ctx, ns, tarPath, ref); err != nil {
		return fmt.Errorf("devenv: import busybox: %w", err)
	}
	logging.L(ctx).Debug("busybox imported", "ref", ref, "namespace", ns, "took", time.Since(t0))
	return nil
}

// importImage imports the OCI layout tarball tarPath into namespace ns,
// unpacked for the default snapshotter, and checks that an image named ref
// came out of it.
func (c *Containerd) importImage(ctx context.Context, ns, tarPath, ref string) error {
	return c.importFor(ctx, ns, tarPath, ref, imagePlatform(), true)
}

// importFor imports tarPath's image for platform p into namespace ns,
// unpacked or not, and checks that an image named ref came out of it.
func (c *Containerd) importFor(ctx context.Context, ns, tarPath, ref string, p ocispec.Platform, unpack bool) error {
	args := []string{"images", "import", "--platform", p.OS + "/" + p.Architecture}
	if !unpack {
		args = append(args, "--no-unpack")
	}
	if _, _, err := c.ctrIn(ctx, ns, append(args, tarPath)...); err != nil {
		return err
	}
	out, _, err := c.ctrIn(ctx, ns, "images", "ls", "-q")
	if err != nil {
		return err
	}
	if !containsLine(out, ref) {
		return fmt.Errorf("imported %s into namespace %s but no image is named %s (have: %s)", filepath.Base(tarPath), ns, ref, strings.Join(strings.Fields(out), " "))
	}
	return nil
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
