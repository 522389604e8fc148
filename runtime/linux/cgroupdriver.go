package linux

import (
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/resource/cgroups"
)

// systemdRunning is whether systemd manages this host's cgroups (as
// libcontainer decides it: /run/systemd/system is a directory); a variable
// for tests.
var systemdRunning = systemd.IsRunningSystemd

// checkCgroupDriver refuses, before anything is set up, a container whose
// cgroups the configured driver cannot make: the systemd driver
// ([linux] systemd_cgroup, or SystemdCgroup in runc's options, which the
// CRI sets when kubelet's cgroupDriver is systemd) on a host without
// systemd, and a systemd cgroupsPath ("slice:prefix:name") under the
// cgroupfs driver, which would make a cgroup of that literal name.
// libcontainer's own errors for these come late and say less.
func checkCgroupDriver(spec *specs.Spec, id string, useSystemd bool) error {
	var path string
	if spec.Linux != nil {
		path = spec.Linux.CgroupsPath
	}
	_, systemdPath := cgroups.SystemdSlice(path)
	switch {
	case useSystemd && !systemdRunning():
		return fmt.Errorf("container %s: the systemd cgroup driver is configured ([linux] systemd_cgroup, or SystemdCgroup in the runtime's options) "+
			"but systemd does not run this host (no /run/systemd/system): configure the cgroupfs driver, in husk and in kubelet: %w",
			id, errdefs.ErrFailedPrecondition)
	case !useSystemd && systemdPath:
		return fmt.Errorf("container %s: cgroupsPath %q is systemd's slice:prefix:name form, but husk drives cgroups through cgroupfs: "+
			"set [linux] systemd_cgroup = true (or SystemdCgroup = true in the runtime's options) where kubelet's cgroup driver is systemd: %w",
			id, path, errdefs.ErrInvalidArgument)
	}
	return nil
}
