package config

import (
	"fmt"
	"time"
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

// maxDiskSlots bounds [virt] disk_slots: a VM's virtio-mmio devices.
const maxDiskSlots = 16

// maxAgentTimeout bounds [virt] agent_timeout: a call to a guest longer
// than this is a hung guest, not a slow one.
const maxAgentTimeout = 10 * time.Minute

func (v *Virt) validate() []problem {
	var ps []problem
	if v.Hypervisor != "builtin" && v.Hypervisor != "qemu" {
		ps = append(ps, problem{"hypervisor", fmt.Errorf("unknown hypervisor %q (want builtin or qemu)", v.Hypervisor)})
	}
	if err := absClean(v.QEMU.Binary); err != nil {
		ps = append(ps, problem{"qemu.binary", err})
	}
	if a := v.QEMU.Accel; a != "auto" && a != "kvm" && a != "tcg" {
		ps = append(ps, problem{"qemu.accel", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", a)})
	}
	if u := v.QEMU.User; u != "" && !validUser(u) {
		ps = append(ps, problem{"qemu.user", fmt.Errorf("%q: want a user name or number (a-z, 0-9, '_', '-', '.')", u)})
	}
	for _, p := range []struct{ key, path string }{{"guest_image", v.GuestImage}, {"rootfs_cache", v.RootfsCache}} {
		if err := absClean(p.path); err != nil {
			ps = append(ps, problem{p.key, err})
		}
	}
	if v.VCPUs < 1 || v.VCPUs > MaxVCPUs {
		ps = append(ps, problem{"vcpus", fmt.Errorf("%d: want 1 to %d", v.VCPUs, MaxVCPUs)})
	}
	if v.MaxVCPUs > MaxVCPUs {
		ps = append(ps, problem{"max_vcpus", fmt.Errorf("%d: want at most %d (0: the host's CPUs)", v.MaxVCPUs, MaxVCPUs)})
	} else if v.MaxVCPUs != 0 && v.VCPUs > v.MaxVCPUs {
		ps = append(ps, problem{"vcpus", fmt.Errorf("%d: more than max_vcpus (%d)", v.VCPUs, v.MaxVCPUs)})
	}
	if v.MemoryMiB < MinMemoryMiB || v.MemoryMiB > MaxMemoryMiB {
		ps = append(ps, problem{"memory_mib", fmt.Errorf("%d: want %d to %d", v.MemoryMiB, MinMemoryMiB, MaxMemoryMiB)})
	}
	if v.MaxMemoryMiB != 0 && (v.MaxMemoryMiB < MinMemoryMiB || v.MaxMemoryMiB > MaxMemoryMiB) {
		ps = append(ps, problem{"max_memory_mib", fmt.Errorf("%d: want %d to %d (0: the host's memory)", v.MaxMemoryMiB, MinMemoryMiB, MaxMemoryMiB)})
	} else if v.MaxMemoryMiB != 0 && v.MemoryMiB > v.MaxMemoryMiB {
		ps = append(ps, problem{"memory_mib", fmt.Errorf("%d: more than max_memory_mib (%d)", v.MemoryMiB, v.MaxMemoryMiB)})
	}
	for _, p := range v.KernelParams {
		if err := CheckKernelParam(p); err != nil {
			ps = append(ps, problem{"kernel_params", err})
		}
	}
	if d, err := v.BootTimeout.Parse(); err != nil {
		ps = append(ps, problem{"boot_timeout", err})
	} else if d <= 0 {
		ps = append(ps, problem{"boot_timeout", fmt.Errorf("%s: want a positive duration", v.BootTimeout)})
	}
	if d, err := v.AgentTimeout.Parse(); err != nil {
		ps = append(ps, problem{"agent_timeout", err})
	} else if d <= 0 || d > maxAgentTimeout {
		ps = append(ps, problem{"agent_timeout", fmt.Errorf("%s: want a positive duration of at most %v", v.AgentTimeout, maxAgentTimeout)})
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

// validUser says whether u can be a user's name or number.
func validUser(u string) bool {
	if len(u) > 32 || u[0] == '-' {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
