package handler_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeaf keeps the contract, and the Linux engine the guest agent links,
// free of the host-only parts of husk: the hook engine, wazero and the
// shim's persisted state. The agent runs inside every VM; what it links is
// what a hostile guest can reach.
func TestLeaf(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command in PATH to list package dependencies")
	}
	forbidden := []string{
		"github.com/huskrt/husk/hooks",
		"github.com/huskrt/husk/wasmhost",
		"github.com/huskrt/husk/runtime/persist",
		"github.com/huskrt/husk/shim",
		"github.com/huskrt/husk/vmm",
		"github.com/tetratelabs/wazero",
	}
	for _, pkg := range []string{"github.com/huskrt/husk/runtime/handler", "github.com/huskrt/husk/runtime/linux"} {
		out, err := exec.Command(goBin, "list", "-tags", "seccomp", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
