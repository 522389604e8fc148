package cri

import (
	"os"
	"strings"
	"testing"
)

func TestParseShimCmdline(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    Shim
		ok      bool
	}{
		{"/x/containerd-shim-husk-v2\x00-namespace\x00k8s.io\x00-id\x00abc\x00-address\x00/b/c.sock\x00",
			Shim{Pid: 7, Binary: "containerd-shim-husk-v2", Namespace: "k8s.io", ID: "abc", Address: "/b/c.sock"}, true},
		{"containerd-shim-runc-v2\x00-debug\x00-namespace\x00ns\x00-address\x00/a\x00-id\x00x\x00",
			Shim{Pid: 7, Binary: "containerd-shim-runc-v2", Namespace: "ns", ID: "x", Address: "/a"}, true},
		// The short-lived invocations containerd runs.
		{"containerd-shim-runc-v2\x00-namespace\x00ns\x00-address\x00/a\x00-publish-binary\x00/c\x00-id\x00x\x00start\x00", Shim{}, false},
		{"containerd-shim-husk-v2\x00-namespace\x00ns\x00-address\x00/a\x00-id\x00x\x00delete\x00", Shim{}, false},
		// An id that happens to be a subcommand's name is still an id.
		{"containerd-shim-husk-v2\x00-namespace\x00ns\x00-address\x00/a\x00-id\x00start\x00",
			Shim{Pid: 7, Binary: "containerd-shim-husk-v2", Namespace: "ns", ID: "start", Address: "/a"}, true},
		{"/usr/bin/containerd\x00--config\x00x.toml\x00", Shim{}, false},
		{"sleep\x00-id\x00x\x00", Shim{}, false},
	} {
		got, ok := parseShimCmdline(7, []byte(c.cmdline))
		if ok != c.ok || got != c.want {
			t.Errorf("%q: %+v %v, want %+v %v", strings.ReplaceAll(c.cmdline, "\x00", " "), got, ok, c.want, c.ok)
		}
	}
}

func TestShimOfWalksUpToTheShim(t *testing.T) {
	// This test process's parent chain holds no shim: an error naming the pid.
	if _, err := ShimOf(os.Getpid(), []Shim{{Pid: -1}}); err == nil {
		t.Error("ShimOf found a shim above the test process")
	}
	// The test binary's parent (go test) stands in for a shim one hop up.
	parent := os.Getppid()
	s, err := ShimOf(os.Getpid(), []Shim{{Pid: parent, ID: "p"}})
	if err != nil || s.ID != "p" {
		t.Errorf("ShimOf = %+v, %v; want the parent", s, err)
	}
}
