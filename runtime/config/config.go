// Package config holds husk's configuration: its schema and defaults, where
// it is read from, and how it is decoded and validated.
//
// Configuration is /etc/husk/config.toml followed by the drop-ins
// /etc/husk/config.d/*.toml in lexical order; a key in a later file overrides
// the same key in an earlier one, and keys a file does not mention keep their
// value. Decoding is strict: unknown keys, wrong types and bad values are
// errors that name the file, line and key (see Error).
//
// Adding a section is a field on Config with its toml tag, a struct type with
// its defaults in Default, checks (if any) in validate.go, and its keys in
// examples/config.toml (a test keeps the example complete).
package config

import (
	"bytes"
	"fmt"
	"os"

	"github.com/pelletier/go-toml/v2"
)

const (
	// DefaultPath is the main config file used when neither the containerd
	// runtime option ConfigPath nor EnvPath names one.
	DefaultPath = "/etc/husk/config.toml"
	// EnvPath is the environment variable naming the main config file.
	EnvPath = "HUSK_CONFIG"
	// DropInDir is the directory, next to the main file, holding drop-ins.
	DropInDir = "config.d"
)

// Config is husk's effective configuration. A *Config returned by Load is
// valid; treat it as immutable.
type Config struct {
	Runtime Runtime `toml:"runtime"`
	Log     Log     `toml:"log"`
	Linux   Linux   `toml:"linux"`
	Virt    Virt    `toml:"virt"`
	Hooks   []Hook  `toml:"hook"` // the hook chain, in order (hook.go)

	// Sources lists the files applied, in order (empty: built-in defaults).
	Sources []string `toml:"-"`
}

// Runtime configures the shim as a whole.
type Runtime struct {
	// DefaultHandler runs containers that do not ask for a handler. Load
	// checks it is a handler husk knows; whether this build includes it is
	// checked where handlers are registered.
	DefaultHandler HandlerName `toml:"default_handler"`
	// StateDir is the absolute, clean directory for per-container state.
	StateDir string `toml:"state_dir"`
	// SandboxCgroupOnly moves each pod's shim into the pod's cgroup.
	SandboxCgroupOnly bool `toml:"sandbox_cgroup_only"`
}

// Log configures the shim's logging.
type Log struct {
	Level Level `toml:"level"`
}

// Linux configures the Linux (libcontainer) handler.
type Linux struct {
	// SystemdCgroup drives cgroups through systemd, as runc --systemd-cgroup.
	SystemdCgroup bool `toml:"systemd_cgroup"`
	// NoPivotRoot enters the rootfs with MS_MOVE and chroot instead of
	// pivot_root, for roots on ramfs where pivot_root fails.
	NoPivotRoot bool `toml:"no_pivot_root"`
}

// Virt configures the VirtContainer handler: each pod in a VM of its own.
type Virt struct {
	// Hypervisor runs the VMs: "builtin", husk's VMM in a confined process
	// per VM, or "qemu", a qemu-system-x86_64 process per VM.
	Hypervisor string `toml:"hypervisor"`
	// QEMU configures the qemu hypervisor.
	QEMU VirtQEMU `toml:"qemu"`
	// GuestImage is the directory holding the guest image (make guest,
	// huskctl guest build): vmlinuz, initrd.img and manifest.json.
	GuestImage string `toml:"guest_image"`
	// VCPUs and MemoryMiB size each pod's VM.
	VCPUs     uint32 `toml:"vcpus"`
	MemoryMiB uint64 `toml:"memory_mib"`
	// MaxVCPUs and MaxMemoryMiB bound what a hook at sandbox.vm may give
	// a pod's VM; 0 means what the host has (its online CPUs, its memory).
	MaxVCPUs     uint32 `toml:"max_vcpus"`
	MaxMemoryMiB uint64 `toml:"max_memory_mib"`
	// KernelParams are added to the guest kernel's command line, after
	// husk's own (console, reboot and panic behaviour).
	KernelParams []string `toml:"kernel_params"`
	// BootTimeout bounds a VM's boot: from its start to the agent's answer.
	BootTimeout Duration `toml:"boot_timeout"`
	// AgentTimeout bounds each call to a VM's agent (long-polls get it on
	// top of their own wait): an agent that does not answer in time fails
	// the call. A guest emulated without KVM (TCG) under load needs more
	// than the default.
	AgentTimeout Duration `toml:"agent_timeout"`
	// DiskSlots is how many root filesystems can be given to a running VM
	// (containers created after its boot); the pod's first container's
	// is one of them.
	DiskSlots int `toml:"disk_slots"`
	// RootfsCache holds the EROFS images made from containers' root
	// filesystems, shared by the pods of a node.
	RootfsCache string `toml:"rootfs_cache"`
	// DebugConsole lets `huskctl debug-console` open a shell in a pod's
	// guest, through its agent (agent/console.go). Off, the VM boots
	// without it and its agent refuses every console.
	DebugConsole bool `toml:"debug_console"`
}

// VirtQEMU configures the qemu hypervisor ([virt.qemu]).
type VirtQEMU struct {
	// Binary is the qemu-system-x86_64 to run.
	Binary string `toml:"binary"`
	// Accel is "auto" (KVM where /dev/kvm runs a guest, else TCG), "kvm"
	// or "tcg".
	Accel string `toml:"accel"`
	// User, when set, is the user (a name or a number) QEMU runs as,
	// with that user's groups; "" leaves it the shim's.
	User string `toml:"user"`
}

// Default returns the built-in configuration that files override.
func Default() Config {
	return Config{
		Runtime: Runtime{
			DefaultHandler: HandlerLinux,
			StateDir:       "/run/husk",
		},
		Log: Log{Level: LevelInfo},
		Virt: Virt{
			Hypervisor:   "builtin",
			QEMU:         VirtQEMU{Binary: "/usr/bin/qemu-system-x86_64", Accel: "auto"},
			GuestImage:   "/var/cache/husk/guest",
			VCPUs:        1,
			MemoryMiB:    256,
			KernelParams: []string{},
			BootTimeout:  "60s",
			AgentTimeout: "10s",
			DiskSlots:    8,
			RootfsCache:  "/var/cache/husk/rootfs",
		},
	}
}

// Path returns the main config file to load and whether it was asked for
// explicitly. optionPath (the containerd runtime option ConfigPath) wins over
// $HUSK_CONFIG, which wins over DefaultPath; only DefaultPath may be absent.
func Path(optionPath string) (path string, explicit bool) {
	if optionPath != "" {
		return optionPath, true
	}
	if p := os.Getenv(EnvPath); p != "" {
		return p, true
	}
	return DefaultPath, false
}

// TOML renders c as a TOML document that Load reads back to the same values
// (Sources is not part of it).
func (c *Config) TOML() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}
