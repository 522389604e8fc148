package linux

import (
	"os"
	"runtime"
	"testing"
)

// init keeps the main thread to main's goroutine, as the shim's main does
// (see cmd/containerd-shim-husk-v2).
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		Init() // libcontainer re-executes the test binary as a container's init
	}
	os.Exit(m.Run())
}
