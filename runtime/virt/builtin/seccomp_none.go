//go:build !seccomp || !cgo

package builtin

import "errors"

// seccompBuilt says this build confines the VMM process with seccomp.
const seccompBuilt = false

// loadSeccomp fails in a build without libseccomp: the VMM process does
// not run unconfined.
func loadSeccomp(int) error {
	return errors.New("seccomp: the shim was built without it (go build -tags seccomp, with cgo)")
}
