// Package persist keeps, per sandbox, what cleaning up after a crashed shim
// needs: which containers exist, with which handler, bundle and resources.
// The record lives in <state_dir>/<namespace>/<sandbox-id>/state.json, is
// written atomically (temp file, fsync, rename) in a 0700 directory, and is
// read back by `containerd-shim-husk-v2 delete` when the shim is gone.
package persist

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Version is the record format; a reader refuses newer ones.
const Version = 1

const (
	stateFile = "state.json"
	// bundleRef names the file in each container's bundle that points to
	// its sandbox's state directory.
	bundleRef = "husk.json"
)

// Sandbox is the persisted state of one sandbox.
type Sandbox struct {
	Version   int    `json:"version"`
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Handler   string `json:"handler"`
	// ShimPid is the shim serving the sandbox.
	ShimPid int `json:"shim_pid"`
	// ShimCgroup is the cgroup the shim moved itself into (sandbox cgroup
	// mode), removed with the sandbox; empty otherwise.
	ShimCgroup string      `json:"shim_cgroup,omitempty"`
	Containers []Container `json:"containers"`
}

// Container is one container of a sandbox.
type Container struct {
	ID      string `json:"id"`
	Bundle  string `json:"bundle"`
	Handler string `json:"handler"`
}

// Dir is the state directory of a sandbox.
func Dir(stateDir, namespace, sandboxID string) string {
	return filepath.Join(stateDir, namespace, sandboxID)
}

// Write stores s in dir atomically.
func Write(dir string, s *Sandbox) error {
	s.Version = Version
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(dir, stateFile, b)
}

// Read loads the sandbox state in dir.
func Read(dir string) (*Sandbox, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sandbox state in %s: %w", dir, errdefs.ErrNotFound)
		}
		return nil, err
	}
	var s Sandbox
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sandbox state in %s: %v: %w", dir, err, errdefs.ErrDataLoss)
	}
	if s.Version > Version {
		return nil, fmt.Errorf("sandbox state in %s has version %d, this husk reads up to %d: %w", dir, s.Version, Version, errdefs.ErrNotImplemented)
	}
	return &s, nil
}

// Remove deletes a sandbox's state directory and everything in it.
func Remove(dir string) error {
	return os.RemoveAll(dir)
}

// Update changes the record in dir under an exclusive lock, so that the
// `delete` commands containerd runs at once for every container of a dead
// shim's pod do not lose each other's changes. fn may change the record and
// says whether the sandbox is gone (then the directory is removed, else the
// record is written back). A missing record is passed as nil.
func Update(dir string, fn func(*Sandbox) (gone bool, err error)) error {
	unlock, err := lock(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			_, err = fn(nil)
			return err
		}
		return err
	}
	defer unlock()
	s, err := Read(dir)
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	gone, err := fn(s)
	if err != nil || s == nil {
		return err
	}
	if gone {
		return Remove(dir)
	}
	return Write(dir, s)
}

// lock takes an exclusive flock on the directory itself (not on a file in
// it: the directory may be removed by the holder, and a lock file removed
// while others wait on it would let two holders in).
func lock(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// AddContainer records c (replacing a record of the same id).
func (s *Sandbox) AddContainer(c Container) {
	s.RemoveContainer(c.ID)
	s.Containers = append(s.Containers, c)
}

// RemoveContainer forgets container id.
func (s *Sandbox) RemoveContainer(id string) {
	s.Containers = slices.DeleteFunc(s.Containers, func(c Container) bool { return c.ID == id })
}

// BundleRef is what a bundle says about its sandbox.
type BundleRef struct {
	SandboxID string `json:"sandbox_id"`
	StateDir  string `json:"state_dir"`
}

// WriteBundleRef records in a container's bundle where its sandbox's state
// lives, so that delete finds it even if the config changed since.
func WriteBundleRef(bundle string, r BundleRef) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeAtomic(bundle, bundleRef, b)
}

// ReadBundleRef reads what WriteBundleRef wrote.
func ReadBundleRef(bundle string) (BundleRef, error) {
	var r BundleRef
	b, err := os.ReadFile(filepath.Join(bundle, bundleRef))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return r, fmt.Errorf("bundle %s has no husk state reference: %w", bundle, errdefs.ErrNotFound)
		}
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("bundle %s: %s: %v: %w", bundle, bundleRef, err, errdefs.ErrDataLoss)
	}
	return r, nil
}

// writeAtomic replaces dir/name with data: readers see the old or the new
// file, never a part. dir is created 0700, the file is 0600.
func writeAtomic(dir, name string, data []byte) (retErr error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
