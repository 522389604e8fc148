package virt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/resource/rootfs"
)

// A container's root filesystem reaches the guest as an EROFS image on a
// disk: made from containerd's mounts (the image's layers, read-only) with
// mkfs.erofs, kept in the rootfs cache under a key of the layers, so that
// the second container of an image pays nothing. The container's writes go
// to a tmpfs layer in the guest (the agent's overlay), not to the host.

// mkfsErofs is Debian's erofs-utils tool.
const mkfsErofs = "mkfs.erofs"

// rootfsImage is a container's image on the host.
type rootfsImage struct {
	path   string
	cached bool // shared in the cache: not removed with the container
}

// layersKey returns a cache key for mounts that are only read-only
// layers, and false for anything else (a bundle's own rootfs, a writable
// layer with content): containerd's committed snapshots never change, and
// their directories name them.
func layersKey(ms []mount.Mount) (string, bool) {
	if len(ms) != 1 {
		return "", false
	}
	m := ms[0]
	var lower string
	switch m.Type {
	case "overlay":
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lower = v
			}
			if v, ok := strings.CutPrefix(o, "upperdir="); ok && !emptyDir(v) {
				return "", false // the container's own layer has content
			}
		}
	case "bind":
		ro := false
		for _, o := range m.Options {
			ro = ro || o == "ro"
		}
		if !ro {
			return "", false
		}
		lower = m.Source
	}
	if lower == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(lower))
	return hex.EncodeToString(sum[:]), true
}

func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// building serialises the builds of one cache key in this shim; other
// shims may build the same image at once, and rename makes that safe.
var building sync.Map // key → *sync.Mutex

// buildRootfs makes the EROFS image of a container's root filesystem:
// containerd's mounts (or the bundle's rootfs when there are none)
// mounted at bundle/rootfs, read and written to an image in cache.
func buildRootfs(ctx context.Context, cache, id, bundle string, ms []mount.Mount) (_ rootfsImage, retErr error) {
	tool, err := exec.LookPath(mkfsErofs)
	if err != nil {
		return rootfsImage{}, fmt.Errorf("%s not found (Debian's erofs-utils): VM containers need it to give their root filesystem to the guest: %w", mkfsErofs, errdefs.ErrFailedPrecondition)
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return rootfsImage{}, err
	}
	key, cacheable := layersKey(ms)
	img := rootfsImage{path: filepath.Join(cache, key+".erofs"), cached: cacheable}
	if cacheable {
		mu, _ := building.LoadOrStore(key, &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
		if _, err := os.Stat(img.path); err == nil {
			return img, nil
		}
	} else {
		img.path = filepath.Join(cache, "container-"+id+".erofs")
	}

	src := filepath.Join(bundle, "rootfs")
	if len(ms) > 0 {
		mounted, err := rootfs.Mount(ms, src)
		if err != nil {
			return rootfsImage{}, err
		}
		defer func() {
			if err := mounted.Unmount(); err != nil && retErr == nil {
				retErr = err
			}
		}()
	} else if err := rootfs.Check(src); err != nil {
		return rootfsImage{}, err
	}
	tmp, err := os.CreateTemp(cache, ".build-*.erofs")
	if err != nil {
		return rootfsImage{}, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	// Owners, modes, times and xattrs as they are in the tree.
	cmd := exec.CommandContext(ctx, tool, tmp.Name(), src)
	if out, err := cmd.CombinedOutput(); err != nil {
		return rootfsImage{}, fmt.Errorf("%s of %s's root filesystem: %v: %s", mkfsErofs, id, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp.Name(), img.path); err != nil {
		return rootfsImage{}, err
	}
	return img, nil
}

// remove deletes an image that belongs to one container.
func (r rootfsImage) remove() error {
	if r.cached || r.path == "" {
		return nil
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// unmountRootfs undoes a rootfs mount a dead shim may have left.
func unmountRootfs(path string) error {
	if err := mount.UnmountRecursive(path, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
