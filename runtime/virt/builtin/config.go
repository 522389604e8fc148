//go:build !husk_vmmchild

package builtin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/version"

	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/vmm"
)

// Limits a VMConfig is checked against before any process starts.
const (
	maxIDLen      = 128
	maxVCPUs      = 255 // the MADT's local APIC ids
	minMemoryMiB  = 32
	maxMemoryMiB  = 1 << 20
	maxCmdlineLen = 4096
	// fixedDevices are the virtio devices every VM has besides its disk
	// slots: vsock and rng.
	fixedDevices = 2
	// MaxDiskSlots is the most disk slots a VM can have (with no NICs).
	MaxDiskSlots = vmm.MaxVirtioDevices - fixedDevices
	// sunPathMax is the room in a sockaddr_un for a path and its NUL.
	sunPathMax = 108
)

// Files the backend keeps in VMConfig.Dir.
const (
	// recordName is the VMM process's pid and start time, for Cleanup.
	recordName = "vmm.pid"
)

// checkConfig validates cfg and returns what the VMM process is sent.
// Every error wraps errdefs.ErrInvalidArgument.
func checkConfig(cfg *virt.VMConfig) (*childConfig, error) {
	if cfg == nil {
		return nil, invalid("no VM config")
	}
	if cfg.ID == "" || len(cfg.ID) > maxIDLen || strings.IndexFunc(cfg.ID, notIDRune) >= 0 {
		return nil, invalid("VM id %q: want 1 to %d of [A-Za-z0-9_.-]", cfg.ID, maxIDLen)
	}
	if err := checkDir(cfg.Dir); err != nil {
		return nil, err
	}
	if err := checkFile("kernel", cfg.Kernel); err != nil {
		return nil, err
	}
	if cfg.Initrd != "" {
		if err := checkFile("initrd", cfg.Initrd); err != nil {
			return nil, err
		}
	}
	for _, p := range cfg.KernelParams {
		if p == "" || strings.IndexFunc(p, isControl) >= 0 {
			return nil, invalid("kernel parameter %q: empty or with control characters", p)
		}
	}
	cmdline := strings.Join(cfg.KernelParams, " ")
	if len(cmdline) > maxCmdlineLen {
		return nil, invalid("kernel command line of %d bytes, at most %d", len(cmdline), maxCmdlineLen)
	}
	if cfg.VCPUs < 1 || cfg.VCPUs > maxVCPUs {
		return nil, invalid("%d vCPUs: want 1 to %d", cfg.VCPUs, maxVCPUs)
	}
	if cfg.MemoryMiB < minMemoryMiB || cfg.MemoryMiB > maxMemoryMiB {
		return nil, invalid("%d MiB of memory: want %d to %d", cfg.MemoryMiB, minMemoryMiB, maxMemoryMiB)
	}
	if cfg.DiskSlots < 0 || cfg.DiskSlots > MaxDiskSlots {
		return nil, invalid("%d disk slots: want 0 to %d", cfg.DiskSlots, MaxDiskSlots)
	}
	if c := cfg.Cgroup; c != "" && (!filepath.IsAbs(c) || filepath.Clean(c) != c || c == "/") {
		return nil, invalid("cgroup %q: want a clean absolute path below the root", c)
	}
	if len(cfg.NICs) > MaxNICs || fixedDevices+cfg.DiskSlots+len(cfg.NICs) > vmm.MaxVirtioDevices {
		return nil, invalid("%d NICs and %d disk slots: at most %d NICs, and %d devices with the slots", len(cfg.NICs), cfg.DiskSlots, MaxNICs, vmm.MaxVirtioDevices-fixedDevices)
	}
	ccfg := &childConfig{
		ID: cfg.ID, Dir: cfg.Dir, Kernel: cfg.Kernel, Initrd: cfg.Initrd, Cmdline: cmdline,
		VCPUs: int(cfg.VCPUs), MemoryMiB: cfg.MemoryMiB, DiskSlots: cfg.DiskSlots,
		Build: version.Revision,
	}
	for _, n := range cfg.NICs {
		if n.Tap == nil || len(n.MAC) != 6 || n.MAC[0]&1 != 0 {
			return nil, invalid("NIC %q: want a tap and a unicast MAC (got %v)", n.ID, n.MAC)
		}
		ccfg.Nets = append(ccfg.Nets, childNet{ID: n.ID, MAC: n.MAC.String()})
	}
	return ccfg, nil
}

// checkDir accepts the VM's own directory: absolute, clean, a directory
// (not a symlink to one) that only its owner may write, and short enough
// for its socket's path to fit a sockaddr_un.
func checkDir(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return invalid("VM dir %q: want a clean absolute path", dir)
	}
	if n := len(dir) + 1 + len(vsockName); n >= sunPathMax {
		return invalid("VM dir %q: its socket's path would be %d bytes, at most %d", dir, n, sunPathMax-1)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return invalid("VM dir: %v", err)
	}
	if !fi.IsDir() {
		return invalid("VM dir %s is a %v, not a directory", dir, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return invalid("VM dir %s has mode %v: others may write it", dir, fi.Mode().Perm())
	}
	return nil
}

func checkFile(what, p string) error {
	if !filepath.IsAbs(p) {
		return invalid("%s %q: want an absolute path", what, p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return invalid("%s: %v", what, err)
	}
	if !fi.Mode().IsRegular() {
		return invalid("%s %s is not a regular file", what, p)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("builtin: %w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func notIDRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
