package linux

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	runcfeatures "github.com/opencontainers/runc/types/features"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// AnnotationLibcontainerVersion is the features annotation that names the
// version of runc's libcontainer the handler runs containers with.
const AnnotationLibcontainerVersion = "io.husk.libcontainer.version"

// Features returns the OCI runtime features document of the Linux handler:
// what libcontainer, which creates its containers, honours. It is the
// document `runc features` prints for the same libcontainer, but for what
// husk does not do (checkpoints, rootless systemd cgroups) and for what
// this kernel lacks: without mount_setattr(2) (Linux 5.12), neither the
// recursive mount attributes (rro and the like) nor idmapped mounts, which
// user-namespaced pods need, are reported.
func Features() *features.Features {
	t, f := true, false
	feat := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         configs.KnownHookNames(),
		MountOptions:  specconv.KnownMountOptions(),
		Linux: &features.Linux{
			Namespaces:   specconv.KnownNamespaces(),
			Capabilities: capabilities.KnownCapabilities(),
			Cgroup: &features.Cgroup{
				V1:      &t,
				V2:      &t,
				Systemd: &t,
				// The shim runs as root: libcontainer's rootless
				// (user session) systemd driver is never used.
				SystemdUser: &f,
				Rdma:        &t,
			},
			Apparmor: &features.Apparmor{Enabled: &t},
			Selinux:  &features.Selinux{Enabled: &t},
			IntelRdt: &features.IntelRdt{Enabled: &t, Schemata: &t, Monitoring: &t},
			MemoryPolicy: &features.MemoryPolicy{
				Modes: specconv.KnownMemoryPolicyModes(),
				Flags: specconv.KnownMemoryPolicyFlags(),
			},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
			NetDevices:      &features.NetDevices{Enabled: &t},
		},
		Annotations: map[string]string{},
		// Annotations of a container's config.json that change how it is
		// run: libcontainer's systemd unit properties.
		PotentiallyUnsafeConfigAnnotations: []string{"org.systemd.property."},
	}
	if v := libcontainerVersion(); v != "" {
		feat.Annotations[AnnotationLibcontainerVersion] = v
	}
	if seccomp.Enabled {
		feat.Linux.Seccomp = &features.Seccomp{
			Enabled:        &t,
			Actions:        seccomp.KnownActions(),
			Operators:      seccomp.KnownOperators(),
			Archs:          seccomp.KnownArchs(),
			KnownFlags:     seccomp.KnownFlags(),
			SupportedFlags: seccomp.SupportedFlags(),
		}
		major, minor, patch := seccomp.Version()
		feat.Annotations[runcfeatures.AnnotationLibseccompVersion] = fmt.Sprintf("%d.%d.%d", major, minor, patch)
	} else {
		feat.Linux.Seccomp = &features.Seccomp{Enabled: &f}
	}
	if !MountSetattrWorks() {
		feat.MountOptions = slices.DeleteFunc(feat.MountOptions, isRecursiveAttr)
		feat.Linux.MountExtensions.IDMap.Enabled = &f
	}
	return feat
}

// libcontainerVersion is the version of the runc module this binary was
// built with ("" when the build carries no module information).
func libcontainerVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == "github.com/opencontainers/runc" {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

// recursiveAttrs are the mount options libcontainer applies with
// mount_setattr(2) and AT_RECURSIVE (specconv's recAttrFlags).
var recursiveAttrs = []string{
	"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
	"rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
	"rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
}

// RecursiveAttrs returns the mount options that set recursive mount
// attributes (rro and the like).
func RecursiveAttrs() []string { return slices.Clone(recursiveAttrs) }

func isRecursiveAttr(o string) bool { return slices.Contains(recursiveAttrs, o) }

// mountSetattrProbe reports whether the kernel has mount_setattr(2); a
// variable for tests.
var mountSetattrProbe = sync.OnceValue(func() bool {
	// No file and no flags: a kernel with the call refuses the arguments
	// (EBADF, ENOENT, EINVAL); one without it, or a seccomp filter that
	// hides it, answers ENOSYS or EPERM.
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM)
})

// MountSetattrWorks reports whether this kernel has mount_setattr(2), which
// recursive mount attributes (rro) and idmapped mounts need.
func MountSetattrWorks() bool { return mountSetattrProbe() }

// checkMountSetattr refuses, with a clear error, a spec whose mounts need
// mount_setattr(2) on a kernel without it: libcontainer would fail deep in
// the container's setup with a bare ENOSYS.
func checkMountSetattr(spec *specs.Spec, id string) error {
	if MountSetattrWorks() {
		return nil
	}
	for _, m := range spec.Mounts {
		if i := slices.IndexFunc(m.Options, isRecursiveAttr); i >= 0 {
			return fmt.Errorf("container %s: mount %s asks for %q, a recursive mount attribute, which needs mount_setattr(2) (Linux 5.12 or later): this kernel does not have it: %w",
				id, m.Destination, m.Options[i], errdefs.ErrNotImplemented)
		}
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 || slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap") {
			return fmt.Errorf("container %s: mount %s is idmapped, which needs mount_setattr(2) (Linux 5.12 or later): this kernel does not have it: %w",
				id, m.Destination, errdefs.ErrNotImplemented)
		}
	}
	return nil
}
