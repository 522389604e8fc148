// Package cgroups reads a container's cgroup the way containerd's runc shim
// does, through containerd/cgroups/v3: metrics for Stats and OOM-kill
// notifications, on cgroup v1 (and hybrid) and v2 hosts alike.
package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/containerd/errdefs"
)

// Cgroup is one container's cgroup, on whichever hierarchy the host uses.
type Cgroup struct {
	v1 cgroup1.Cgroup
	v2 *cgroup2.Manager
	// memDir is the cgroup's directory in the memory hierarchy (v1) or
	// the unified one (v2): where the OOM kill counter is read.
	memDir string
}

// ForPid loads the cgroup that process pid is in.
func ForPid(pid int) (*Cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		path, err := cgroup2.PidGroupPath(pid)
		if err != nil {
			return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
		}
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("loading cgroup %s: %w", path, err)
		}
		return &Cgroup{v2: m, memDir: filepath.Join("/sys/fs/cgroup", path)}, nil
	}
	paths := cgroup1.PidPath(pid)
	cg, err := cgroup1.Load(paths)
	if err != nil {
		return nil, fmt.Errorf("loading cgroup of pid %d: %w", pid, err)
	}
	c := &Cgroup{v1: cg}
	for _, s := range cg.Subsystems() {
		if p, ok := s.(interface{ Path(string) string }); ok && s.Name() == cgroup1.Memory {
			if rel, err := paths(cgroup1.Memory); err == nil {
				c.memDir = p.Path(rel)
			}
		}
	}
	return c, nil
}

// Stats returns the cgroup's metrics: a *cgroup1/stats.Metrics or a
// *cgroup2/stats.Metrics, the messages ctr and the CRI decode.
func (c *Cgroup) Stats() (any, error) {
	if c.v2 != nil {
		return c.v2.Stat()
	}
	m, err := c.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil, fmt.Errorf("cgroup is gone: %w", errdefs.ErrNotFound)
		}
		return nil, err
	}
	return m, nil
}
