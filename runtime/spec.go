package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxSpecSize bounds how much of a bundle's config.json is read.
const maxSpecSize = 16 << 20

// LoadSpec reads and checks the OCI spec of a bundle. A malformed spec is an
// invalid argument naming the file and the problem.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s has no config.json: %w", bundle, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSpecSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, maxSpecSize, errdefs.ErrInvalidArgument)
	}
	return ParseSpec(path, b)
}

// ParseSpec decodes and checks an OCI spec; name is used in errors.
func ParseSpec(name string, b []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("malformed OCI spec %s: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	switch {
	case s.Version == "":
		return nil, fmt.Errorf("malformed OCI spec %s: ociVersion is missing: %w", name, errdefs.ErrInvalidArgument)
	case s.Process == nil:
		return nil, fmt.Errorf("malformed OCI spec %s: process is missing: %w", name, errdefs.ErrInvalidArgument)
	case len(s.Process.Args) == 0:
		return nil, fmt.Errorf("malformed OCI spec %s: process.args is empty: %w", name, errdefs.ErrInvalidArgument)
	case s.Root == nil || s.Root.Path == "":
		return nil, fmt.Errorf("malformed OCI spec %s: root.path is missing: %w", name, errdefs.ErrInvalidArgument)
	}
	return &s, nil
}
