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
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// shimCgroupName is the leaf the shim moves into inside its pod's cgroup
// (cgroup v2 allows processes only in leaves of a delegated subtree).
const shimCgroupName = "husk-shim"

// PodPath returns the pod cgroup of a sandbox container, as a path below
// the cgroup root: the parent directory of a cgroupfs cgroupsPath, or the
// slice of a systemd one ("slice:prefix:name", what the CRI writes under
// the systemd cgroup driver), laid out as systemd lays slices out:
// "kubepods-burstable-pod1.slice" is
// /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice.
// Empty and relative paths, the root and the root slice give "".
func PodPath(cgroupsPath string) string {
	if slice, ok := SystemdSlice(cgroupsPath); ok {
		p, err := systemd.ExpandSlice(slice)
		if err != nil || p == "/" {
			return ""
		}
		return p
	}
	if cgroupsPath == "" || strings.Contains(cgroupsPath, ":") || !strings.HasPrefix(cgroupsPath, "/") {
		return ""
	}
	p := path.Dir(path.Clean(cgroupsPath))
	if p == "/" {
		return ""
	}
	return p
}

// SystemdSlice reports whether cgroupsPath is in systemd's
// "slice:prefix:name" form, and returns its slice ("" for the root slice,
// as runc reads it).
func SystemdSlice(cgroupsPath string) (slice string, ok bool) {
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 || parts[2] == "" || parts[0] != "" && !strings.HasSuffix(parts[0], ".slice") {
		return "", false
	}
	return parts[0], true
}

// mountedHierarchy is cgroup1's default hierarchy less the controllers
// whose directory is not a cgroup mount. systemd makes a directory for
// every v1 controller the kernel has, and where one cannot be mounted (in a
// container) it stays an empty directory on a read-only tmpfs, where making
// a cgroup fails.
func mountedHierarchy() ([]cgroup1.Subsystem, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, err
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		p, ok := s.(interface{ Path(string) string })
		if !ok {
			out = append(out, s)
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(p.Path("/"), &st); err == nil && (st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC) {
			out = append(out, s)
		}
	}
	return out, nil
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
	if _, err := cgroup1.New(cgroup1.StaticPath(podPath), res, cgroup1.WithHierarchy(mountedHierarchy)); err != nil {
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
	cg, err := cgroup1.New(cgroup1.StaticPath(leaf), &specs.LinuxResources{}, cgroup1.WithHierarchy(mountedHierarchy))
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
	cg, err := cgroup1.Load(cgroup1.StaticPath(leaf), cgroup1.WithHierarchy(mountedHierarchy))
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
			if root, err := cgroup1.Load(cgroup1.StaticPath("/"), cgroup1.WithHierarchy(mountedHierarchy)); err == nil {
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
