package linux

import (
	"os"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostID(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 5000, HostID: 7, Size: 1}}
	tests := []struct {
		id   uint32
		want uint32
		ok   bool
	}{
		{0, 100000, true}, {999, 100999, true}, {1000, 0, false}, {5000, 7, true}, {5001, 0, false},
	}
	for _, tt := range tests {
		if got, ok := hostID(tt.id, m); got != tt.want || ok != tt.ok {
			t.Errorf("hostID(%d) = %d, %v; want %d, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := hostID(0, nil); ok {
		t.Error("no mapping maps 0")
	}
}

// TestChownStdioGivesPipesToTheMappedUser checks that a user-namespaced
// process's pipes belong to the host IDs its user maps to, and that nothing
// changes without a mapping.
func TestChownStdioGivesPipesToTheMappedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	owner := func(f *os.File) (uint32, uint32) {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := chownStdio(&specs.Spec{Linux: &specs.Linux{}}, 0, 0, w); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(w); u != 0 || g != 0 {
		t.Errorf("without a mapping: owner %d:%d", u, g)
	}
	userns := &specs.Spec{Linux: &specs.Linux{
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1507328, Size: 65536}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1507328, Size: 65536}},
	}}
	if err := chownStdio(userns, 1000, 100, w, nil); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(w); u != 1507328+1000 || g != 1507328+100 {
		t.Errorf("user 1000:100 in a namespace mapped at 1507328: owner %d:%d", u, g)
	}
}
