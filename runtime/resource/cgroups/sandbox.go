package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// shimCgroupName is the leaf the shim moves into inside its pod's cgroup
// (cgroup v2 allows processes only in leaves of a delegated subtree).
const shimCgroupName = "husk-shim"

// PodPath returns the pod cgroup of a sandbox container: the parent of its
// cgroupsPath. Systemd-style paths ("slice:prefix:name") are not handled
// yet, nor are empty ones: both give "".
func PodPath(cgroupsPath string) string {
	if cgroupsPath == "" || strings.Contains(cgroupsPath, ":") || !strings.HasPrefix(cgroupsPath, "/") {
		return ""
	}
	p := path.Dir(path.Clean(cgroupsPath))
	if p == "/" {
		return ""
	}
	return p
}

// SizePod creates (if needed) the pod cgroup at podPath and applies res to
// it, so the pod as a whole cannot exceed what the CRI sized it to.
func SizePod(podPath string, res *specs.LinuxResources) error {
	if cgroups.Mode() == cgroups.Unified {
		if _, err := cgroup2.NewManager("/sys/fs/cgroup", podPath, cgroup2.ToResources(res)); err != nil {
			return fmt.Errorf("sizing pod cgroup %s: %w", podPath, err)
		}
		return nil
	}
	if _, err := cgroup1.New(cgroup1.StaticPath(podPath), res); err != nil {
		return fmt.Errorf("sizing pod cgroup %s: %w", podPath, err)
	}
	return nil
}

// MoveShim moves process pid (the shim) into a leaf of the pod cgroup, so
// that what the shim costs is accounted to the pod. It returns the leaf's
// path, to give to ReleaseShim.
func MoveShim(podPath string, pid int) (string, error) {
	leaf := path.Join(podPath, shimCgroupName)
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager("/sys/fs/cgroup", leaf, &cgroup2.Resources{})
		if err != nil {
			return "", fmt.Errorf("creating shim cgroup %s: %w", leaf, err)
		}
		if err := m.AddProc(uint64(pid)); err != nil {
			return "", fmt.Errorf("moving the shim into %s: %w", leaf, err)
		}
		return leaf, nil
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(leaf), &specs.LinuxResources{})
	if err != nil {
		return "", fmt.Errorf("creating shim cgroup %s: %w", leaf, err)
	}
	if err := cg.AddProc(uint64(pid)); err != nil {
		return "", fmt.Errorf("moving the shim into %s: %w", leaf, err)
	}
	return leaf, nil
}

// ReleaseShim moves process pid (if alive) back to the root cgroup and
// removes the shim's leaf. The leaf must be one MoveShim returned.
func ReleaseShim(leaf string, pid int) error {
	if path.Base(leaf) != shimCgroupName {
		return fmt.Errorf("%s is not a husk shim cgroup: %w", leaf, errdefs.ErrInvalidArgument)
	}
	if cgroups.Mode() == cgroups.Unified {
		if pid > 0 {
			_ = os.WriteFile("/sys/fs/cgroup/cgroup.procs", []byte(fmt.Sprint(pid)), 0)
		}
		if err := os.Remove(filepath.Join("/sys/fs/cgroup", leaf)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing shim cgroup %s: %w", leaf, err)
		}
		return nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(leaf))
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil
		}
		return fmt.Errorf("loading shim cgroup %s: %w", leaf, err)
	}
	// A thread the Go runtime starts while the process is being moved can
	// land in the old cgroup, and a child the shim started (a precompile)
	// counts until it is reaped: move again and retry for up to a second.
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		if pid > 0 {
			if root, err := cgroup1.Load(cgroup1.StaticPath("/")); err == nil {
				_ = root.AddProc(uint64(pid))
			}
		}
		if lastErr = cg.Delete(); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	procs, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", leaf, "cgroup.procs"))
	return fmt.Errorf("removing shim cgroup %s (processes in it: %q, shim %d): %w", leaf, strings.TrimSpace(string(procs)), pid, lastErr)
}
