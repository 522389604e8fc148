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
	path, b, err := readSpec(bundle)
	if err != nil {
		return nil, err
	}
	return ParseSpec(path, b)
}

// LoadAnnotations reads only the annotations of a bundle's spec: the
// shim's start command needs nothing else, and decoding the whole spec is
// most of that short-lived process's own work.
func LoadAnnotations(bundle string) (map[string]string, error) {
	path, b, err := readSpec(bundle)
	if err != nil {
		return nil, err
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("malformed OCI spec %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return s.Annotations, nil
}

// readSpec reads a bundle's config.json, up to maxSpecSize.
func readSpec(bundle string) (string, []byte, error) {
	path := filepath.Join(bundle, "config.json")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return path, nil, fmt.Errorf("bundle %s has no config.json: %w", bundle, errdefs.ErrNotFound)
		}
		return path, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSpecSize+1))
	if err != nil {
		return path, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSpecSize {
		return path, nil, fmt.Errorf("%s is larger than %d bytes: %w", path, maxSpecSize, errdefs.ErrInvalidArgument)
	}
	return path, b, nil
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
