// Package linux is husk's LinuxContainer handler: OCI bundles run natively
// on the host through runc's libcontainer, used as a library, so containers
// get the same namespaces, cgroups, mounts, capabilities, seccomp and hooks
// as under runc itself.
package linux

import (
	"github.com/opencontainers/runc/libcontainer"

	// Device rules in cgroups need the devices controller code linked in.
	_ "github.com/opencontainers/cgroups/devices"
	// nsenter's C constructor does the namespace joining of "init" before
	// the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// InitArg is the first argument with which libcontainer re-executes the shim
// binary as a container's init.
const InitArg = "init"

// Init is the container-side entry point: the shim's main calls it when
// started with InitArg. It never returns.
func Init() {
	libcontainer.Init()
}
