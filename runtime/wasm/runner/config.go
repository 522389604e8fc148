// Package runner is husk's Wasm runner: the program that runs a WASI module
// as a container's process, inside the container's namespaces and cgroup,
// after libcontainer's init has pivoted into its rootfs. The shim bind-mounts
// the runner binary (cmd/husk-wasm-runner) read-only into the container and
// makes it the process's args[0]; the runner runs the module with wazero
// against the container's own root. It imports nothing of husk's but the
// contract (runnerapi), so the binary stays small and static. It is also
// the shim's compiler: run on the host with -precompile, it compiles a
// module into the shared cache with exactly the configuration it runs
// modules with (RuntimeConfig), so the shim links no wazero and its cache
// entries are the runner's hits.
package runner

import (
	"github.com/tetratelabs/wazero"

	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// RuntimeConfig is the wazero configuration the runner compiles and runs
// modules with, for the shim's cache (Precompile) and in containers alike:
// wazero's cache key covers the compile-relevant options.
func RuntimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(runnerapi.EnsureTermination)
}
