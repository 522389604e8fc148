//go:build seccomp && cgo

package builtin

import (
	"fmt"

	seccomp "github.com/seccomp/libseccomp-golang"
)

// seccompBuilt says this build confines the VMM process with seccomp.
const seccompBuilt = true

// loadSeccomp installs the allow-list (syscalls.go) on every thread of the
// process, with no_new_privs set on each (libseccomp's defaults: TSYNC,
// NNP). pid is the process's pid in its own PID namespace.
func loadSeccomp(pid int) error {
	def := seccomp.ActKillProcess
	if seccompLogUnlisted {
		def = seccomp.ActLog
	}
	f, err := seccomp.NewFilter(def)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	defer f.Release()
	if err := f.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	if err := f.SetNoNewPrivsBit(true); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	for _, g := range append(allowList(pid), extraSyscalls...) {
		for _, r := range g.rules {
			if err := addRule(f, r); err != nil {
				return fmt.Errorf("seccomp: %s: %w", r.name, err)
			}
		}
	}
	if err := f.Load(); err != nil {
		return fmt.Errorf("seccomp: loading the filter: %w", err)
	}
	return nil
}

func addRule(f *seccomp.ScmpFilter, r syscallRule) error {
	sc, err := seccomp.GetSyscallFromName(r.name)
	if err != nil {
		return err
	}
	act := seccomp.ActAllow
	if r.errno != 0 {
		act = seccomp.ActErrno.SetReturnCode(int16(r.errno))
	}
	if len(r.alts) == 0 {
		return f.AddRule(sc, act)
	}
	for _, a := range r.alts {
		c, err := seccomp.MakeCondition(a.arg, seccomp.CompareMaskedEqual, a.mask, a.value)
		if err != nil {
			return err
		}
		if err := f.AddRuleConditional(sc, act, []seccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}
