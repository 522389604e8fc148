package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
)

// processRecord names a VMM process so that a later shim can end it
// (vmproc.Record: its pid and start time).
type processRecord = vmproc.Record

// maxRecord bounds the record file Cleanup reads.
const maxRecord = vmproc.MaxRecord

// startTime returns process pid's start time and whether it is still
// running (a zombie is not). ok is false if there is no such process.
func startTime(pid int) (start uint64, running, ok bool) { return vmproc.StartTime(pid) }

// writeProcessRecord records process pid in dir, atomically.
func writeProcessRecord(dir string, pid int) error {
	return vmproc.Write(filepath.Join(dir, recordName), pid)
}

func readProcessRecord(dir string) (*processRecord, error) {
	return vmproc.Read(filepath.Join(dir, recordName))
}

// removeState removes what the backend put in dir.
func removeState(dir string) error {
	var errs []error
	for _, name := range []string{vsockName, recordName, recordName + ".tmp"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup kills the VMM process recorded in dir, if it is still the one
// recorded, waits until it has exited (bounded by ctx), and removes the
// backend's files.
func cleanup(ctx context.Context, dir string) error {
	r, err := readProcessRecord(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No process recorded: it never started, or Stop or a previous
		// Cleanup removed the record after it ended.
	case err != nil:
		return fmt.Errorf("builtin: cleanup: %w", err)
	default:
		if err := killRecorded(ctx, r); err != nil {
			return fmt.Errorf("builtin: cleanup: %w", err)
		}
	}
	if err := removeState(dir); err != nil {
		return fmt.Errorf("builtin: cleanup: %w", err)
	}
	return nil
}

// killRecorded SIGKILLs r's process if it is still the one recorded and
// waits until it has exited (vmproc.Kill).
func killRecorded(ctx context.Context, r *processRecord) error { return vmproc.Kill(ctx, r) }
