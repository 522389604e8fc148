// Command containerd-shim-husk-v2 is husk's containerd shim: the composition
// root, and nothing else.
package main

import (
	"context"
	"os"
	"runtime"

	"github.com/huskrt/husk/runtime/linux"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/wasm"
	"github.com/huskrt/husk/shim"
)

// init keeps the main thread to main's goroutine. libcontainer starts each
// container with a goroutine that locks its thread, joins the container's
// mount namespace and ends still locked, so that Go ends the thread; but Go
// cannot end the main thread and parks it instead, in that namespace, for
// the rest of the shim's life. /proc/self is the main thread, so everything
// reading /proc/self/mountinfo (cgroups/v3 finding the cgroup mounts: the
// pod cgroup's release, a container's stats and OOM watch) then saw the
// container's mounts, not the host's. Locked to main, the main thread runs
// no other goroutine.
func init() {
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case linux.InitArg:
			linux.Init() // a container's init, re-executed by libcontainer
		default:
			vmmProcess(os.Args[1]) // a pod's confined VMM process, where built in
		}
	}
	shim.Run(context.Background(), linux.New(), wasm.New(), virt.New(hypervisors()...))
}
