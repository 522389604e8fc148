package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/boundedfile"
)

// A rootfs record says where Create mounted a container's rootfs: the
// spec's root.path (relative to the bundle, or absolute), which need not be
// bundle/rootfs. Cleanup, run by the delete command after a shim died,
// unmounts what the record names and nothing else: a root directory husk
// did not mount (a rootfs the user prepared) keeps its mounts.
//
// Records live in the sandbox's state directory, one file a container,
// beside libcontainer's state (stateRoot) rather than in it: libcontainer
// owns that directory's names.

// maxRootfsRecord bounds a record's size: a path.
const maxRootfsRecord = 4096

func rootfsRecordPath(sandboxDir, id string) (string, error) {
	if id == "" || id == "." || id == ".." || filepath.Base(id) != id {
		return "", fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(sandboxDir, Name+"-rootfs", id), nil
}

// writeRootfsRecord records that container id's rootfs is mounted at
// target (an absolute path), before it is mounted.
func writeRootfsRecord(sandboxDir, id, target string) error {
	p, err := rootfsRecordPath(sandboxDir, id)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("recording the rootfs of %s: %w", id, err)
	}
	if err := os.WriteFile(p, []byte(target), 0o600); err != nil {
		return fmt.Errorf("recording the rootfs of %s: %w", id, err)
	}
	return nil
}

// readRootfsRecord returns where container id's rootfs was mounted, or ok
// false when nothing was recorded.
func readRootfsRecord(sandboxDir, id string) (target string, ok bool, err error) {
	p, err := rootfsRecordPath(sandboxDir, id)
	if err != nil {
		return "", false, err
	}
	b, err := boundedfile.Read("read rootfs record", p, maxRootfsRecord)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	target = string(b)
	if !filepath.IsAbs(target) || filepath.Clean(target) != target {
		return "", false, fmt.Errorf("rootfs record %s: %q is not an absolute clean path", p, target)
	}
	return target, true, nil
}

// removeRootfsRecord forgets container id's record; none is not an error.
func removeRootfsRecord(sandboxDir, id string) error {
	p, err := rootfsRecordPath(sandboxDir, id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
