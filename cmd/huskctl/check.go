package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/qemu"
	"github.com/huskrt/husk/vmm"
	"github.com/huskrt/husk/vmm/kvm"
)

const checkUsage = `usage: huskctl check [--config PATH]

Says what this host can run, handler by handler, and why not: for the VM
handler, which hypervisor backends this host can use (builtin: whether
/dev/kvm runs a guest and how fast; qemu: its binary, accelerator and agent
channel), whether the guest image is built and intact, whether VM pods
can take a pod's network (a tap joined by tc: tun, sch_ingress, cls_u32,
act_mirred), and whether mkfs.erofs is installed. Only the configured backend ([virt] hypervisor) is
required. Then whether this build runs hook modules (a build without the
hook engine cannot serve a configuration that has hooks). Exits 1 when the
configured default handler cannot run here, or hooks are configured and
this build cannot run them.
`

// finding is one line of huskctl check's report.
type finding struct {
	what string
	err  error // nil: fine
	note string
	// optional findings are reported but do not stop the handler: a
	// backend the configuration does not use.
	optional bool
}

// runCheck implements "huskctl check".
func runCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), checkUsage) }
	path := fs.String("config", "", "husk's config file (default: $"+config.EnvPath+", else "+config.DefaultPath+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(config.Path(*path))
	if err != nil {
		return err
	}
	virt := checkVirt(ctx, cfg)
	ok := report(os.Stdout, "virt", virt)
	hooksOK := report(os.Stdout, "hooks", checkHookEngine(cfg))
	var errs []error
	if cfg.Runtime.DefaultHandler == config.HandlerVirt && !ok {
		errs = append(errs, errors.New("the default handler, virt, cannot run on this host"))
	}
	if !hooksOK {
		errs = append(errs, fmt.Errorf("%d hooks are configured: %w", len(cfg.Hooks), hooks.ErrNotInBuild))
	}
	return errors.Join(errs...)
}

// checkHookEngine says whether this build runs hook modules (make build
// VARIANT=nohooks leaves the engine out; huskctl is built as the shim is),
// which only matters when the configuration has hooks.
func checkHookEngine(cfg *config.Config) []finding {
	f := finding{what: "hook engine", optional: len(cfg.Hooks) == 0, note: fmt.Sprintf("%d hooks configured", len(cfg.Hooks))}
	if !hooks.Built {
		f.err = hooks.ErrNotInBuild
	}
	return []finding{f}
}

// checkVirt lists what the VM handler needs and whether this host has it.
func checkVirt(ctx context.Context, cfg *config.Config) []finding {
	var fs []finding
	b := finding{what: builtinName + " VMM", optional: cfg.Virt.Hypervisor != builtinName}
	per, err := vmm.ProbeSpeed(ctx)
	switch {
	case !withVMM:
		b.err, b.note = errNoVMM, "make build VARIANT=novmm leaves it out: the virt handler runs VMs with qemu"
	case errors.Is(err, kvm.ErrUnavailable):
		b.err, b.note = err, "no usable /dev/kvm: load kvm-intel or kvm-amd, or run in a VM with nested virtualisation"
	case err != nil:
		b.err = err
	case per > vmm.SlowInstruction:
		b.note = fmt.Sprintf("KVM is slow: %v a guest instruction (hardware: under %v); nested on an emulated CPU, Linux guests boot in seconds; an emulating KVM cannot boot them at all", per, vmm.SlowInstruction)
	default:
		b.note = fmt.Sprintf("KVM is hardware-assisted, %v a guest instruction", per)
	}
	q := finding{what: qemu.Name, optional: cfg.Virt.Hypervisor != qemu.Name}
	q.note, q.err = qemu.New().Probe(ctx, virt.QEMUConfig{Binary: cfg.Virt.QEMU.Binary, Accel: cfg.Virt.QEMU.Accel})
	if b.err != nil && !b.optional && q.err == nil {
		b.note += `; [virt] hypervisor = "qemu" would run VMs here`
	}
	fs = append(fs, b, q)
	if m, err := guestimage.Load(cfg.Virt.GuestImage); err != nil {
		fs = append(fs, finding{what: "guest image", err: err, note: "build it: make guest, or huskctl guest build --out " + cfg.Virt.GuestImage})
	} else {
		fs = append(fs, finding{what: "guest image", note: fmt.Sprintf("%s: %s %s, agent %.12s", cfg.Virt.GuestImage, m.Package, m.Version, m.Agent.SHA256)})
	}
	pn := finding{what: "pod network", optional: true, note: "a tap joined to the pod's interface by tc mirred"}
	if err := virt.ProbePodNetwork(); err != nil {
		pn.err, pn.note = err, "VM pods cannot take a network namespace's interfaces (CNI): load tun, sch_ingress, cls_u32 and act_mirred"
	}
	fs = append(fs, pn)
	pf := finding{what: "port-forward", optional: true, note: "the pod namespace's loopback steered to the guest (BPF sk_lookup)"}
	if err := virt.ProbePortForward(); err != nil {
		pf.err, pf.note = err, "VM pods run without crictl/kubectl port-forward: it needs BPF sk_lookup (Linux 5.9) and CAP_BPF"
	}
	fs = append(fs, pf)
	if p, err := exec.LookPath("mkfs.erofs"); err != nil {
		fs = append(fs, finding{what: "mkfs.erofs", err: err, note: "install Debian's erofs-utils: root filesystems reach VMs as EROFS images"})
	} else {
		fs = append(fs, finding{what: "mkfs.erofs", note: p})
	}
	return fs
}

// report prints a handler's findings and says whether all are fine.
func report(w io.Writer, handler string, fs []finding) bool {
	ok := true
	for _, f := range fs {
		ok = ok && (f.err == nil || f.optional)
	}
	verdict := "can run here"
	if !ok {
		verdict = "cannot run here"
	}
	fmt.Fprintf(w, "%s: %s\n", handler, verdict)
	for _, f := range fs {
		mark := "ok  "
		switch {
		case f.err != nil && f.optional:
			mark = "no  " // not needed by this configuration
		case f.err != nil:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-12s", mark, f.what)
		if f.err != nil {
			fmt.Fprintf(w, " %v", f.err)
		}
		if f.note != "" {
			fmt.Fprintf(w, " (%s)", f.note)
		}
		fmt.Fprintln(w)
	}
	return ok
}
