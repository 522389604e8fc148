package config

import (
	"fmt"
	"strings"
)

// The limits of a VM's shape, whoever sets it (configuration, annotation or
// hook): a VM needs one vCPU and enough memory for the kernel and the
// agent; xAPIC ids are 8 bits (the built-in VMM takes up to 254 vCPUs, and
// a backend may allow fewer); Linux reads at most 2048 bytes of command
// line on x86. The host and [virt]'s max_vcpus and max_memory_mib bound a
// pod's VM further (runtime/virt).
const (
	MaxVCPUs        = 254
	MinMemoryMiB    = 64
	MaxMemoryMiB    = 256 << 10
	MaxKernelParams = 2048
)

// reservedKernelParams are the guest kernel parameters that neither the
// configuration nor a hook may set: they choose the guest's first process
// (husk's agent, the only one that speaks for the pod) or override the
// words husk puts first on every guest's command line (its console and
// what a panic does), which a later duplicate would replace, or turn on
// the agent's debug console, which only [virt] debug_console may.
var reservedKernelParams = []string{"init", "rdinit", "console", "earlycon", "earlyprintk", "reboot", "panic", "husk.debug_console"}

// CheckKernelParam says whether p may be added to a guest's command line:
// one non-empty word of printable ASCII (no spaces: a parameter cannot
// smuggle in a second one) whose name (before any '=') is not reserved.
func CheckKernelParam(p string) error {
	if p == "" || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return fmt.Errorf("kernel parameter %q: want one word of printable ASCII", p)
	}
	name, _, _ := strings.Cut(p, "=")
	for _, r := range reservedKernelParams {
		if name == r {
			return fmt.Errorf("kernel parameter %q: %s is husk's to set (reserved: %s)", p, name, strings.Join(reservedKernelParams, ", "))
		}
	}
	return nil
}
