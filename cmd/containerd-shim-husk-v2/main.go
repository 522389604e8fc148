// Command containerd-shim-husk-v2 is husk's containerd shim: the composition
// root, and nothing else.
package main

import (
	"context"
	"os"

	"github.com/huskrt/husk/runtime/linux"
	"github.com/huskrt/husk/runtime/wasm"
	"github.com/huskrt/husk/shim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == linux.InitArg {
		linux.Init() // a container's init, re-executed by libcontainer
	}
	shim.Run(context.Background(), linux.New(), wasm.New())
}
