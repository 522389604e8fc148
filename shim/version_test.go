package shim

import (
	"bytes"
	"strings"
	"testing"

	"github.com/huskrt/husk/version"
)

func TestWantsVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"-v"}, true},
		{[]string{"--version"}, true},
		{[]string{"-v=true"}, true},
		{[]string{"-debug", "-v"}, true},
		{[]string{"-namespace", "k8s.io", "-v"}, true},
		{[]string{"-v=false"}, false},
		{[]string{"-id", "-v"}, false}, // -v is the id
		{[]string{"-namespace", "x", "start"}, false},
		{[]string{"delete", "-v"}, false}, // after the first argument: not a flag
		{[]string{"-info"}, false},
		{nil, false},
	} {
		if got := wantsVersion(tc.args); got != tc.want {
			t.Errorf("wantsVersion(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestPrintVersionIsHusks(t *testing.T) {
	old := version.Version
	version.Version = "v9.8.7-test"
	defer func() { version.Version = old }()
	var b bytes.Buffer
	printVersion(&b, "/usr/local/bin/containerd-shim-husk-v2")
	out := b.String()
	if !strings.HasPrefix(out, "containerd-shim-husk-v2:\n") || !strings.Contains(out, "Version:    v9.8.7-test\n") {
		t.Errorf("version output:\n%s", out)
	}
}
