package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/persist"
)

// podDir finds the state directory of pod (or sandbox) id under stateDir:
// in namespace ns, or, with ns empty, in whichever namespace has it (one
// only: several is an error that asks for --namespace). id must be a
// single path element.
func podDir(stateDir, ns, id string) (string, error) {
	if id == "" || id != filepath.Base(id) || id == "." || id == ".." {
		return "", fmt.Errorf("pod id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	if ns != "" {
		dir := persist.Dir(stateDir, ns, id)
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("no pod %s in namespace %s under %s: %w", id, ns, stateDir, errdefs.ErrNotFound)
		}
		return dir, nil
	}
	matches, _ := filepath.Glob(filepath.Join(stateDir, "*", id))
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("no pod %s under %s: %w", id, stateDir, errdefs.ErrNotFound)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("pod %s exists in several namespaces (%v): say which with --namespace: %w", id, matches, errdefs.ErrInvalidArgument)
}
