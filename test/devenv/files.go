package devenv

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File is one file of an image built by FilesImage.
type File struct {
	// Path in the image, slash-separated, relative or absolute.
	Path string
	// Mode holds the permissions (0644 when zero) and, for a symlink,
	// fs.ModeSymlink.
	Mode fs.FileMode
	Data []byte // a regular file's content
	// Target is a symlink's target.
	Target string
}

// FilesImage writes an OCI image-layout tarball to tarPath, named ref, whose
// one layer holds files (their parent directories are added, 0755) and
// whose configuration is cfg: the same deterministic writer as the busybox
// and pause images. The Wasm examples and tests build their images with it.
func FilesImage(tarPath, ref string, files []File, cfg ocispec.ImageConfig) error {
	ents := map[string]entry{}
	for _, f := range files {
		p := path.Clean(strings.TrimPrefix(f.Path, "/"))
		if p == "." || strings.HasPrefix(p, "..") {
			return fmt.Errorf("devenv: image file path %q is outside the image", f.Path)
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := ents[d]; !ok {
				ents[d] = entry{path: d, mode: fs.ModeDir | 0o755}
			}
		}
		mode := f.Mode
		if mode.Perm() == 0 {
			mode |= 0o644
		}
		ents[p] = entry{path: p, mode: mode, data: f.Data, target: f.Target}
	}
	list := make([]entry, 0, len(ents))
	for _, e := range ents {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].path < list[j].path })
	return writeImage(tarPath, ref, list, cfg)
}

// ImportImage imports the OCI layout tarball tarPath (from FilesImage, say)
// into the bench's Namespace, unpacked, and checks that ref came out of it.
func (c *Containerd) ImportImage(ctx context.Context, tarPath, ref string) error {
	return c.importImage(ctx, c.Namespace, tarPath, ref)
}
