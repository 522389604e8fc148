//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
)

// recordPath is where the VMM process of the VM in dir is recorded
// (vmproc.Record: its pid and start time), for a later shim's Cleanup.
func recordPath(dir string) string { return filepath.Join(dir, recordName) }

// removeState removes what the backend put in dir: the hybrid vsock
// socket and the process record.
func removeState(dir string) error {
	err := os.Remove(filepath.Join(dir, vsockName))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, vmproc.Remove(recordPath(dir)))
}

// cleanup kills the VMM process recorded in dir, if it is still the one
// recorded, waits until it has exited (bounded by ctx), and removes the
// backend's files.
func cleanup(ctx context.Context, dir string) error {
	if err := vmproc.Cleanup(ctx, recordPath(dir)); err != nil {
		return fmt.Errorf("builtin: cleanup: %w", err)
	}
	if err := removeState(dir); err != nil {
		return fmt.Errorf("builtin: cleanup: %w", err)
	}
	return nil
}
