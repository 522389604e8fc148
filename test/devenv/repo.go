package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that holds go.mod. Tests run in their package
// directory, huskctl usually in the root itself.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("devenv: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devenv: no go.mod at or above the working directory")
		}
		dir = parent
	}
}
