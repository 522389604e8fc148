//go:build husk_novmm

package main

import (
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/qemu"
)

// hypervisors are the virt handler's backends in a build without husk's
// own VMM (make build VARIANT=novmm): QEMU only. A configuration naming
// "builtin" gets the virt handler's error that it is not in this build.
func hypervisors() []virt.Hypervisor { return []virt.Hypervisor{qemu.New()} }

func vmmProcess(string) {}
