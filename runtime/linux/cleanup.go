package linux

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/logging"
)

// Cleanup removes what a dead shim left of container id: it kills the
// container's processes, destroys its cgroups and libcontainer state and
// unmounts its rootfs where Create mounted it (its rootfs record: the
// spec's root.path, not necessarily bundle/rootfs; a rootfs husk did not
// mount is left alone). It returns the init's pid (0 if unknown). A
// container already gone is not an error.
func (*Handler) Cleanup(ctx context.Context, sandboxDir, id, bundle string) (int, error) {
	var pid int
	var errs []error
	lc, err := libcontainer.Load(stateRoot(sandboxDir), id)
	switch {
	case errors.Is(err, libcontainer.ErrNotExist):
	case err != nil:
		errs = append(errs, fmt.Errorf("loading container %s: %w", id, err))
	default:
		if st, err := lc.State(); err == nil {
			pid = st.InitProcessPid
		}
		if err := lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
			logging.L(ctx).Warn("killing container", "id", id, "error", err)
		}
		// Destroy refuses a container whose init still runs; SIGKILL is
		// prompt but not instant.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := lc.Status(); err != nil || st == libcontainer.Stopped {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := lc.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("destroying container %s: %w", id, err))
		}
	}
	switch target, ok, err := readRootfsRecord(sandboxDir, id); {
	case err != nil:
		errs = append(errs, err)
	case ok:
		if err := mount.UnmountRecursive(target, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", target, err))
		} else if err := removeRootfsRecord(sandboxDir, id); err != nil {
			errs = append(errs, err)
		}
	}
	return pid, errors.Join(errs...)
}
