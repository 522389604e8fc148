// Command vm-sizing is a hook policy (built-in, see docs/hooks.md) that
// clamps the size of VirtContainer VMs at sandbox.vm: vCPUs and memory
// above the maximum are lowered to it, memory below the minimum raised.
// It never denies.
//
// Configuration (at least one):
//
//	max_vcpus       the most vCPUs a VM gets
//	max_memory_mib  the most memory, in MiB
//	min_memory_mib  the least memory, in MiB
package main

import (
	"errors"

	"github.com/huskrt/husk/policies/sdk"
)

func init() {
	sdk.OnInit(configure)
	sdk.Handle(decide)
}

func main() {}

// The bounds; 0: none.
var maxVCPUs, maxMemory, minMemory int64

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		n, ok := v.Int()
		name, _ := k.Str()
		if !ok || n <= 0 {
			return errors.New(name + ": want a positive whole number")
		}
		switch name {
		case "max_vcpus":
			maxVCPUs = n
		case "max_memory_mib":
			maxMemory = n
		case "min_memory_mib":
			minMemory = n
		default:
			return errors.New("unknown key " + name + " (want max_vcpus, max_memory_mib, min_memory_mib)")
		}
	}
	switch {
	case maxVCPUs == 0 && maxMemory == 0 && minMemory == 0:
		return errors.New("set max_vcpus, max_memory_mib or min_memory_mib")
	case maxMemory > 0 && minMemory > maxMemory:
		return errors.New("min_memory_mib is above max_memory_mib")
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if ev.Point() != sdk.SandboxVM {
		return sdk.Allow()
	}
	var ops []sdk.Op
	if vcpus, ok := ev.At("/vm/vcpus").Int(); ok && maxVCPUs > 0 && vcpus > maxVCPUs {
		ops = append(ops, sdk.Replace("/vm/vcpus", maxVCPUs))
	}
	if mem, ok := ev.At("/vm/memory_mib").Int(); ok {
		switch {
		case maxMemory > 0 && mem > maxMemory:
			ops = append(ops, sdk.Replace("/vm/memory_mib", maxMemory))
		case minMemory > 0 && mem < minMemory:
			ops = append(ops, sdk.Replace("/vm/memory_mib", minMemory))
		}
	}
	if len(ops) == 0 {
		return sdk.Allow()
	}
	return sdk.Patch(ops...)
}
