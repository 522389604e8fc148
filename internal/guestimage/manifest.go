package guestimage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
)

// Manifest records what an image was built from.
type Manifest struct {
	Package string    `json:"package"`  // linux-image-6.1.0-57-cloud-amd64
	Version string    `json:"version"`  // of the package: 6.1.192-3
	Release string    `json:"release"`  // the kernel's: 6.1.0-57-cloud-amd64
	Kernel  File      `json:"kernel"`   // vmlinuz
	Initrd  File      `json:"initrd"`   // initrd.img
	Agent   File      `json:"agent"`    // the binary that is /init, as found on the host
	Modules []string  `json:"modules"`  // file names of LoadOrderFile, in load order
	Builtin []string  `json:"builtin"`  // wanted modules built into the kernel
	Built   time.Time `json:"built_at"` // UTC
}

// File is one input or output of an image.
type File struct {
	Name   string `json:"name"` // in the image directory; for the agent, its path on the host
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Load reads the manifest in dir and checks that the kernel and initrd
// there are the ones it records.
func Load(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("guest image: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("guest image: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	for _, f := range []File{m.Kernel, m.Initrd} {
		if f.Name == "" || f.Name != filepath.Base(f.Name) {
			return nil, fmt.Errorf("guest image: %s: bad file name %q", filepath.Join(dir, ManifestFile), f.Name)
		}
		p := filepath.Join(dir, f.Name)
		got, err := hashFile(p)
		if err != nil {
			return nil, fmt.Errorf("guest image: %w", err)
		}
		if got != f.SHA256 {
			return nil, fmt.Errorf("guest image: %s has sha256 %s, the manifest says %s: rebuild it (huskctl guest build): %w",
				p, got, f.SHA256, errdefs.ErrDataLoss)
		}
	}
	return &m, nil
}

// writeAtomic copies r to dir/name through a temporary file in dir, so a
// reader sees the old file or the whole new one, and returns its sum.
func writeAtomic(dir, name string, r io.Reader) (f File, err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return File{}, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return File{}, fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return File{}, err
	}
	if err := tmp.Sync(); err != nil {
		return File{}, err
	}
	if err := tmp.Close(); err != nil {
		return File{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return File{}, err
	}
	return File{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
