//go:build !husk_novmm

package main

import (
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/builtin"
	"github.com/huskrt/husk/runtime/virt/qemu"
)

// hypervisors are the virt handler's backends: husk's own VMM and QEMU.
// (The husk_novmm build tag leaves husk's VMM out: vmm_none.go.)
func hypervisors() []virt.Hypervisor { return []virt.Hypervisor{builtin.New(), qemu.New()} }

// vmmProcess becomes a pod's confined VMM process when the shim was
// re-executed as one by the builtin hypervisor.
func vmmProcess(arg string) {
	if arg == builtin.ProcessArg {
		builtin.Main()
	}
}
