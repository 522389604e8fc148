// Command husk-wasm-runner runs a WASI module as a container's process. The
// shim bind-mounts it into Wasm containers; it is not meant to be run by
// hand. It is built static (CGO_ENABLED=0), since the container's rootfs
// has no C library to offer.
package main

import (
	"os"

	"github.com/huskrt/husk/runtime/wasm/runner"
)

func main() {
	os.Exit(runner.Main(os.Args[1:]))
}
