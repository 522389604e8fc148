//go:build !husk_novmm

package main

import "github.com/huskrt/husk/runtime/virt/builtin"

// withVMM: this build has husk's own VMM (the husk_novmm build tag leaves
// it out: variant_novmm.go).
const withVMM = true

// builtinName is the builtin hypervisor's name in the configuration.
const builtinName = builtin.Name

// errNoVMM is what the builtin backend answers in a build without it.
var errNoVMM error
