package virt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/guestimage"
)

// guestImage is a checked guest image's files.
type guestImage struct {
	kernel, initrd string
}

var (
	imagesMu sync.Mutex
	// images remembers the images whose sums were checked, by directory,
	// with the manifest's modification time then: a pod start checks an
	// image once per shim, not once per pod.
	images = map[string]time.Time{}
)

// loadImage finds and checks the guest image in dir.
func loadImage(dir string) (guestImage, error) {
	st, err := os.Stat(filepath.Join(dir, guestimage.ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return guestImage{}, fmt.Errorf("no guest image in %s (virt.guest_image): build it with make guest or huskctl guest build: %w", dir, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return guestImage{}, err
	}
	img := guestImage{kernel: filepath.Join(dir, guestimage.KernelFile), initrd: filepath.Join(dir, guestimage.InitrdFile)}
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if t, ok := images[dir]; ok && t.Equal(st.ModTime()) {
		return img, nil
	}
	if _, err := guestimage.Load(dir); err != nil {
		return guestImage{}, fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
	}
	images[dir] = st.ModTime()
	return img, nil
}
