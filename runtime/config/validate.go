package config

import (
	"errors"
	"fmt"
	"path/filepath"
)

// problem is a value that failed validation: the dotted key it is about and
// why. Load turns it into an *Error, adding the file and the key's line.
type problem struct {
	key string
	err error
}

// validate checks c and returns every problem found. It is the one place
// values are checked: each section contributes its checks here, with keys
// relative to the section.
func (c *Config) validate() []problem {
	var ps []problem
	ps = append(ps, within("runtime", c.Runtime.validate())...)
	ps = append(ps, within("log", c.Log.validate())...)
	ps = append(ps, validateHooks(c.Hooks)...)
	return ps
}

func (r *Runtime) validate() []problem {
	var ps []problem
	if err := r.DefaultHandler.Validate(); err != nil {
		ps = append(ps, problem{"default_handler", err})
	}
	if err := absClean(r.StateDir); err != nil {
		ps = append(ps, problem{"state_dir", err})
	}
	return ps
}

func (l *Log) validate() []problem {
	if err := l.Level.Validate(); err != nil {
		return []problem{{"level", err}}
	}
	return nil
}

// within prefixes the keys of ps with the section name.
func within(section string, ps []problem) []problem {
	for i := range ps {
		ps[i].key = section + "." + ps[i].key
	}
	return ps
}

// absClean checks that p is an absolute path in filepath.Clean form, so that
// paths compare and join predictably everywhere they are used.
func absClean(p string) error {
	switch {
	case p == "":
		return errors.New("must be an absolute path, got an empty string")
	case !filepath.IsAbs(p):
		return fmt.Errorf("must be an absolute path, got %q", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("must be a clean path, got %q (want %q)", p, filepath.Clean(p))
	}
	return nil
}
