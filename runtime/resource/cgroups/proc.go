package cgroups

import (
	"fmt"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// AddProc moves process pid (all its threads) into the existing cgroup at
// path (a path under each hierarchy's root): on cgroup v1, into every
// hierarchy where that cgroup exists. It creates nothing: a cgroup that
// does not exist is an error.
func AddProc(path string, pid int) error {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(path)
		if err != nil {
			return fmt.Errorf("loading cgroup %s: %w", path, err)
		}
		if err := m.AddProc(uint64(pid)); err != nil {
			return fmt.Errorf("moving process %d into cgroup %s: %w", pid, path, err)
		}
		return nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return fmt.Errorf("loading cgroup %s: %w", path, err)
	}
	if err := cg.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("moving process %d into cgroup %s: %w", pid, path, err)
	}
	return nil
}
