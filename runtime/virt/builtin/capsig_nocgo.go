//go:build !cgo

package builtin

import "errors"

// installCapDrop needs cgo: the shim is built with it (libcontainer's
// nsenter, libseccomp). Without it the VMM process refuses to run rather
// than run with capabilities.
func installCapDrop() (restore func() error, err error) {
	return nil, errors.New("dropping every thread's capabilities needs a cgo build")
}
