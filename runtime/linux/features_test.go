package linux

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// withMountSetattr makes the kernel probe answer works for the test.
func withMountSetattr(t *testing.T, works bool) {
	t.Helper()
	prev := mountSetattrProbe
	mountSetattrProbe = func() bool { return works }
	t.Cleanup(func() { mountSetattrProbe = prev })
}

func TestRecursiveAttrsAreLibcontainers(t *testing.T) {
	known := specconv.KnownMountOptions()
	for _, o := range recursiveAttrs {
		if !slices.Contains(known, o) {
			t.Errorf("%q is not a mount option libcontainer knows", o)
		}
	}
	// Every known option that begins with r and is neither a propagation
	// nor a plain mount flag is a recursive attribute: none is missed.
	plain := []string{"rbind", "relatime", "remount", "ro", "rw", "rprivate", "rshared", "rslave", "runbindable"}
	for _, o := range known {
		if strings.HasPrefix(o, "r") && !slices.Contains(plain, o) && !isRecursiveAttr(o) {
			t.Errorf("libcontainer's %q is missing from recursiveAttrs", o)
		}
	}
}

func TestFeaturesWithMountSetattr(t *testing.T) {
	withMountSetattr(t, true)
	f := Features()
	if !slices.Contains(f.MountOptions, "rro") {
		t.Errorf("mount options %v lack rro", f.MountOptions)
	}
	if !slices.Contains(f.Linux.Namespaces, "user") {
		t.Errorf("namespaces %v lack user", f.Linux.Namespaces)
	}
	if e := f.Linux.MountExtensions.IDMap.Enabled; e == nil || !*e {
		t.Errorf("idmap not enabled")
	}
	if f.Linux.Seccomp == nil || f.Linux.Seccomp.Enabled == nil {
		t.Fatalf("seccomp not reported")
	}
	if v := f.Annotations[AnnotationLibcontainerVersion]; v == "" && f.Annotations != nil {
		t.Logf("no libcontainer version (a test binary may carry no module versions)")
	}
}

func TestFeaturesWithoutMountSetattr(t *testing.T) {
	withMountSetattr(t, false)
	f := Features()
	for _, o := range f.MountOptions {
		if isRecursiveAttr(o) {
			t.Errorf("mount option %q reported on a kernel without mount_setattr", o)
		}
	}
	if !slices.Contains(f.MountOptions, "ro") || !slices.Contains(f.MountOptions, "rbind") {
		t.Errorf("plain options dropped too: %v", f.MountOptions)
	}
	if e := f.Linux.MountExtensions.IDMap.Enabled; e == nil || *e {
		t.Errorf("idmap reported enabled on a kernel without mount_setattr")
	}
}

func TestCheckMountSetattr(t *testing.T) {
	rro := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "rro"}},
	}}
	idmapped := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}},
	}}
	plain := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"}},
	}}

	withMountSetattr(t, false)
	err := checkMountSetattr(rro, "c1")
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), `"rro"`) || !strings.Contains(err.Error(), "/data") {
		t.Errorf("rro without mount_setattr: %v", err)
	}
	if err := checkMountSetattr(idmapped, "c1"); !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "idmapped") {
		t.Errorf("idmapped mount without mount_setattr: %v", err)
	}
	if err := checkMountSetattr(plain, "c1"); err != nil {
		t.Errorf("ro bind without mount_setattr: %v", err)
	}

	withMountSetattr(t, true)
	for _, s := range []*specs.Spec{rro, idmapped, plain} {
		if err := checkMountSetattr(s, "c1"); err != nil {
			t.Errorf("with mount_setattr: %v", err)
		}
	}
}

// TestMountSetattrHere checks the probe against this kernel: Linux 5.12 and
// later have the call.
func TestMountSetattrHere(t *testing.T) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var u struct{ major, minor int }
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &u.major, &u.minor); err != nil {
		t.Skipf("kernel release %q: %v", unix.ByteSliceToString(uts.Release[:]), err)
	}
	want := u.major > 5 || (u.major == 5 && u.minor >= 12)
	if got := MountSetattrWorks(); got != want {
		t.Errorf("MountSetattrWorks() = %v on Linux %d.%d, want %v", got, u.major, u.minor, want)
	}
}
