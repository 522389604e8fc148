package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Create makes the cgroup at path (a path under each hierarchy's root)
// and its parents, with no limits of its own; on cgroup v2 its parents
// delegate their controllers to it, so what its processes use is
// accounted there. An existing cgroup is kept as it is.
func Create(path string) error {
	if cgroups.Mode() == cgroups.Unified {
		if _, err := cgroup2.NewManager("/sys/fs/cgroup", path, &cgroup2.Resources{}); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", path, err)
		}
		return nil
	}
	if _, err := cgroup1.New(cgroup1.StaticPath(path), &specs.LinuxResources{}); err != nil {
		return fmt.Errorf("creating cgroup %s: %w", path, err)
	}
	return nil
}

// Remove removes the cgroup at path, which must hold no process and no
// child by now; a cgroup already gone is not an error. A process that is
// still exiting keeps a cgroup busy for a moment: Remove retries for up
// to a second.
func Remove(path string) error {
	var last error
	for attempt := 0; attempt < 50; attempt++ {
		if last = remove(path); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", path, last)
}

func remove(path string) error {
	if cgroups.Mode() == cgroups.Unified {
		err := unix.Rmdir(filepath.Join("/sys/fs/cgroup", path))
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
		return nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return cg.Delete()
}
