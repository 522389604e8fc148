package linux

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRlimitTable: the table names every resource limit the kernel has
// (RLIMIT_NLIMITS of them, numbered 0 to 15), each once, under its OCI
// name RLIMIT_<kernel name>.
func TestRlimitTable(t *testing.T) {
	const nlimits = 16 // RLIMIT_NLIMITS on Linux, every architecture
	if len(rlimits) != nlimits {
		t.Errorf("%d rlimits, want %d", len(rlimits), nlimits)
	}
	seen := make(map[int]string)
	for name, n := range rlimits {
		if !strings.HasPrefix(name, "RLIMIT_") {
			t.Errorf("%s: not an OCI rlimit name", name)
		}
		if n < 0 || n >= nlimits {
			t.Errorf("%s = %d, out of range", name, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s are both %d", name, other, n)
		}
		seen[n] = name
	}
	// A few by value, against the kernel's numbers.
	for name, want := range map[string]int{"RLIMIT_CPU": 0, "RLIMIT_NOFILE": 7, "RLIMIT_AS": 9, "RLIMIT_RTTIME": 15} {
		if rlimits[name] != want {
			t.Errorf("%s = %d, want %d", name, rlimits[name], want)
		}
	}
}

// TestNewProcess: an OCI process becomes libcontainer's field by field,
// as runc converts it; what cannot be converted is an invalid argument.
func TestNewProcess(t *testing.T) {
	full := &specs.Process{
		Args: []string{"/bin/sh", "-c", "true"}, Env: []string{"A=1"}, Cwd: "/work",
		User:            specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}},
		NoNewPrivileges: true, ApparmorProfile: "prof", SelinuxLabel: "lbl",
		ConsoleSize:  &specs.Box{Width: 80, Height: 24},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_CHOWN"}, Ambient: []string{"CAP_NET_RAW"}},
		Rlimits: []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024},
			{Type: "RLIMIT_NPROC", Hard: 100, Soft: 50},
		},
		Scheduler:       &specs.Scheduler{Policy: specs.SchedBatch},
		IOPriority:      &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4},
		ExecCPUAffinity: &specs.CPUAffinity{Initial: "0", Final: "0-1"},
	}
	lp, err := newProcess(full)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"Args", lp.Args, full.Args},
		{"Env", lp.Env, full.Env},
		{"Cwd", lp.Cwd, "/work"},
		{"UID", lp.UID, 1000},
		{"GID", lp.GID, 1001},
		{"AdditionalGroups", lp.AdditionalGroups, []int{10, 20}},
		{"NoNewPrivileges", *lp.NoNewPrivileges, true},
		{"AppArmorProfile", lp.AppArmorProfile, "prof"},
		{"Label", lp.Label, "lbl"},
		{"Console", [2]uint16{lp.ConsoleWidth, lp.ConsoleHeight}, [2]uint16{80, 24}},
		{"Capabilities", lp.Capabilities, &configs.Capabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_CHOWN"}, Ambient: []string{"CAP_NET_RAW"}}},
		{"Rlimits", lp.Rlimits, []configs.Rlimit{{Type: unix.RLIMIT_NOFILE, Hard: 4096, Soft: 1024}, {Type: unix.RLIMIT_NPROC, Hard: 100, Soft: 50}}},
		{"Scheduler", lp.Scheduler, full.Scheduler},
		{"IOPriority", lp.IOPriority, full.IOPriority},
		{"CPUAffinity set", lp.CPUAffinity != nil, true},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}

	// The least a process can be: nothing optional is made up.
	lp, err = newProcess(&specs.Process{Args: []string{"x"}, Cwd: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if lp.Capabilities != nil || lp.Rlimits != nil || lp.AdditionalGroups != nil || lp.CPUAffinity != nil ||
		lp.ConsoleWidth != 0 || *lp.NoNewPrivileges || lp.UID != 0 {
		t.Errorf("a bare process converted to %+v", lp)
	}

	for _, tt := range []struct {
		name string
		p    specs.Process
	}{
		{"unknown rlimit", specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILES", Hard: 1, Soft: 1}}}},
		{"lower-case rlimit", specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "rlimit_nofile", Hard: 1, Soft: 1}}}},
		{"bad cpu affinity", specs.Process{ExecCPUAffinity: &specs.CPUAffinity{Initial: "zero"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newProcess(&tt.p); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err = %v, want an invalid argument", err)
			}
		})
	}
}

// TestSetBundleLabel: the bundle label is set once, replacing the one
// specconv made from the shim's working directory.
func TestSetBundleLabel(t *testing.T) {
	c := &configs.Config{Labels: []string{"bundle=/", "other=x"}}
	setBundleLabel(c, "/run/b")
	if want := []string{"bundle=/run/b", "other=x"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %q, want %q", c.Labels, want)
	}
	c = &configs.Config{}
	setBundleLabel(c, "/run/b")
	if want := []string{"bundle=/run/b"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %q, want %q", c.Labels, want)
	}
}
