package linux

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCheckCgroupDriver: the systemd driver without systemd, and a
// systemd cgroupsPath under the cgroupfs driver, are refused with errors
// that say what to configure; what the drivers can make passes.
func TestCheckCgroupDriver(t *testing.T) {
	defer func(f func() bool) { systemdRunning = f }(systemdRunning)
	const slicePath = "kubepods-burstable-pod1.slice:cri-containerd:c"
	tests := []struct {
		name       string
		path       string
		useSystemd bool
		running    bool
		want       error  // nil: accepted
		says       string // in the error
	}{
		{"cgroupfs path, cgroupfs driver", "/kubepods/burstable/pod1/c", false, false, nil, ""},
		{"no path, cgroupfs driver", "", false, false, nil, ""},
		{"systemd path, systemd driver, systemd running", slicePath, true, true, nil, ""},
		{"systemd driver without systemd", slicePath, true, false, errdefs.ErrFailedPrecondition, "systemd does not run this host"},
		{"systemd driver without systemd, no path", "", true, false, errdefs.ErrFailedPrecondition, "[linux] systemd_cgroup"},
		{"systemd path, cgroupfs driver", slicePath, false, true, errdefs.ErrInvalidArgument, "set [linux] systemd_cgroup = true"},
		{"root slice path, cgroupfs driver", ":husk:c", false, false, errdefs.ErrInvalidArgument, "slice:prefix:name"},
		{"a colon in a cgroupfs path", "/a:b", false, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			systemdRunning = func() bool { return tt.running }
			spec := &specs.Spec{Linux: &specs.Linux{CgroupsPath: tt.path}}
			err := checkCgroupDriver(spec, "c", tt.useSystemd)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			case tt.want != nil && !strings.Contains(err.Error(), tt.says):
				t.Errorf("err = %v, want it to say %q", err, tt.says)
			}
		})
	}
}
