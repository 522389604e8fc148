package shim

import (
	"fmt"
	"path/filepath"

	"github.com/containerd/errdefs"
)

// checkConfigPath refuses a relative runtime option ConfigPath. ctr passes
// --runtime-config-path as typed, and the shim runs in the bundle's
// directory, not the caller's: a relative path would name another file, or
// none, and the user would read "not found" about a file that is there.
func checkConfigPath(p string) error {
	if p == "" || filepath.IsAbs(p) {
		return nil
	}
	return fmt.Errorf("runtime option ConfigPath %q (ctr --runtime-config-path) must be an absolute path: the shim does not run in the caller's directory: %w", p, errdefs.ErrInvalidArgument)
}
