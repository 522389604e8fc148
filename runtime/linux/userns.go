package linux

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostID maps id, a user or group ID inside a container, to the host
// through the container's user namespace mapping; ok is false when the
// mapping is empty (no user namespace of its own) or does not cover id.
func hostID(id uint32, mapping []specs.LinuxIDMapping) (_ uint32, ok bool) {
	for _, m := range mapping {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}

// chownStdio gives the child ends of a process's stdio pipes to the host
// IDs its user and group map to in the container's user namespace, as
// containerd's runc shim does with the IoUid and IoGid the CRI sets for a
// user-namespaced container: the process may then reopen them
// (/dev/stdout, /proc/self/fd/1), which an image that links its log files
// to /dev/stdout does. Nothing changes without a user namespace mapping.
func chownStdio(spec *specs.Spec, uid, gid uint32, files ...*os.File) error {
	if spec.Linux == nil {
		return nil
	}
	hu, uok := hostID(uid, spec.Linux.UIDMappings)
	hg, gok := hostID(gid, spec.Linux.GIDMappings)
	if !uok && !gok {
		return nil
	}
	for _, f := range files {
		if f == nil {
			continue
		}
		u, g := -1, -1
		if uok {
			u = int(hu)
		}
		if gok {
			g = int(hg)
		}
		if err := f.Chown(u, g); err != nil {
			return fmt.Errorf("giving stdio to the container's user %d:%d (host %d:%d): %w", uid, gid, u, g, err)
		}
	}
	return nil
}
