package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// Load returns Default() overridden by the file at path and then by each
// drop-in <dir of path>/config.d/*.toml in lexical order. A missing file at
// path is an errdefs.ErrNotFound when explicit (see Path) and otherwise
// leaves the defaults; a missing config.d is fine. Content errors are
// *Error values (several joined when one file has several unknown keys or
// bad values); Load stops at the first file that has any.
func Load(path string, explicit bool) (*Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := c.apply(path, data); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// Nothing to apply: defaults, then drop-ins.
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file %s: %w", path, errdefs.ErrNotFound)
	default:
		return nil, fmt.Errorf("read config: %w", err)
	}

	if err := c.applyDropIns(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadInline is Load for a configuration given as text rather than a file:
// containerd's CRI passes a runtime's whole options table as the runtime
// option ConfigBody when it sets no ConfigPath. name stands for the file in
// errors. The drop-ins next to DefaultPath still apply after it, so that an
// operator's node-wide drop-ins (hook policies above all) hold for inline
// configurations too.
func LoadInline(name string, body []byte) (*Config, error) {
	return loadInline(name, body, filepath.Dir(DefaultPath))
}

// loadInline is LoadInline with the drop-ins of dir.
func loadInline(name string, body []byte, dir string) (*Config, error) {
	c := Default()
	if err := c.apply(name, body); err != nil {
		return nil, err
	}
	if err := c.applyDropIns(dir); err != nil {
		return nil, err
	}
	return &c, nil
}

// applyDropIns applies each <dir>/config.d/*.toml in lexical order.
func (c *Config) applyDropIns(dir string) error {
	dropIns, err := dropIns(filepath.Join(dir, DropInDir))
	if err != nil {
		return err
	}
	for _, p := range dropIns {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read config drop-in: %w", err)
		}
		if err := c.apply(p, data); err != nil {
			return err
		}
	}
	return nil
}

// dropIns lists the *.toml files of dir in lexical order. Hidden files
// (editor and package-manager leftovers such as .x.toml.swp or .#x.toml) are
// skipped.
func dropIns(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config drop-ins: %w", err)
	}
	var paths []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".toml") {
			continue
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	return paths, nil
}

// apply decodes data, the content of file, over c strictly and validates the
// result. Problems are reported against file: values it does not set were
// valid before it was applied.
func (c *Config) apply(file string, data []byte) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	// A file's [[hook]] entries extend the chain (go-toml would instead
	// overwrite it in place, element by element).
	prevHooks := c.Hooks
	c.Hooks = nil
	if err := dec.Decode(c); err != nil {
		return decodeError(file, data, err)
	}
	c.Hooks = appendHooks(prevHooks, c.Hooks)
	if ps := c.validate(); len(ps) > 0 {
		return problemErrors(file, data, localHookKeys(ps, len(prevHooks)))
	}
	c.Sources = append(c.Sources, file)
	return nil
}
