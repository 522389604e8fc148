//go:build husk_novmm

package main

import (
	"context"
	"errors"
	"fmt"
)

// withVMM: this build leaves husk's own VMM out (make build VARIANT=novmm).
const withVMM = false

// builtinName is the builtin hypervisor's name in the configuration.
const builtinName = "builtin"

// errNoVMM is what the builtin backend answers in a build without it.
var errNoVMM = errors.New("husk's VMM is not in this build")

// runVM: huskctl vm runs husk's VMM, which this build has not.
func runVM(context.Context, []string) error {
	return fmt.Errorf("%w (make build VARIANT=novmm leaves it out)", errNoVMM)
}
