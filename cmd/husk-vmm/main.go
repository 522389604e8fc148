// Command husk-vmm is a pod's VMM process: the builtin hypervisor
// (runtime/virt/builtin) starts it, from next to the shim, for each VM it
// runs, and it is nothing else. It links only that package's VMM-process
// side and husk's VMM (vmm/): built with the husk_vmmchild tag (make build
// does), it leaves out everything the shim links besides, so that the
// process beside each guest holds only what running a VM needs (P7, P8).
// Its confinement is the one the shim's own re-execution had: the same
// code (builtin.Main).
//
// Started by hand, without the builtin hypervisor's control channel, it
// says what it is and exits 2.
package main

import (
	"fmt"
	"os"

	"github.com/huskrt/husk/runtime/virt/builtin"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == builtin.ProcessArg {
		builtin.Main() // never returns
	}
	fmt.Fprintln(os.Stderr, "husk-vmm: a pod's VMM process, started by husk's shim (the builtin hypervisor); not a command")
	os.Exit(2)
}
