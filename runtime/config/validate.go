package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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
	ps = append(ps, within("virt", c.Virt.validate())...)
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

// The VM limits (runtime/handler.VM.Check says the same; config imports
// nothing of husk's handlers).
const (
	maxVCPUs     = 254
	minMemoryMiB = 64
	maxMemoryMiB = 256 << 10
	maxDiskSlots = 16
)

func (v *Virt) validate() []problem {
	var ps []problem
	if v.Hypervisor != "builtin" {
		ps = append(ps, problem{"hypervisor", fmt.Errorf("unknown hypervisor %q (want builtin)", v.Hypervisor)})
	}
	for _, p := range []struct{ key, path string }{{"guest_image", v.GuestImage}, {"rootfs_cache", v.RootfsCache}} {
		if err := absClean(p.path); err != nil {
			ps = append(ps, problem{p.key, err})
		}
	}
	if v.VCPUs < 1 || v.VCPUs > maxVCPUs {
		ps = append(ps, problem{"vcpus", fmt.Errorf("%d: want 1 to %d", v.VCPUs, maxVCPUs)})
	}
	if v.MemoryMiB < minMemoryMiB || v.MemoryMiB > maxMemoryMiB {
		ps = append(ps, problem{"memory_mib", fmt.Errorf("%d: want %d to %d", v.MemoryMiB, minMemoryMiB, maxMemoryMiB)})
	}
	for _, p := range v.KernelParams {
		if p == "" || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			ps = append(ps, problem{"kernel_params", fmt.Errorf("%q: want one word of printable ASCII each", p)})
		}
	}
	if d, err := v.BootTimeout.Parse(); err != nil {
		ps = append(ps, problem{"boot_timeout", err})
	} else if d <= 0 {
		ps = append(ps, problem{"boot_timeout", fmt.Errorf("%s: want a positive duration", v.BootTimeout)})
	}
	if v.DiskSlots < 1 || v.DiskSlots > maxDiskSlots {
		ps = append(ps, problem{"disk_slots", fmt.Errorf("%d: want 1 to %d", v.DiskSlots, maxDiskSlots)})
	}
	return ps
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
