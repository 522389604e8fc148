// Package cli is the command line of husk's VMM, shared by `huskctl vm
// run` and the static cmd/husk-vmm-test that the nested-KVM harness puts
// into its outer initrd: flags in, a booted and finished VM out.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/huskrt/husk/vmm"
)

// ErrUsage reports bad flags; the usage has been printed.
var ErrUsage = errors.New("usage")

// diskFlags collects repeated --disk values: path[,ro][,id=ID].
type diskFlags []vmm.Disk

func (d *diskFlags) String() string { return fmt.Sprint(*d) }

func (d *diskFlags) Set(s string) error {
	parts := strings.Split(s, ",")
	disk := vmm.Disk{Path: parts[0]}
	if disk.Path == "" {
		return errors.New("empty disk path")
	}
	for _, p := range parts[1:] {
		switch {
		case p == "ro":
			disk.ReadOnly = true
		case p == "rw":
			disk.ReadOnly = false
		case strings.HasPrefix(p, "id="):
			disk.ID = strings.TrimPrefix(p, "id=")
		default:
			return fmt.Errorf("disk option %q: want ro, rw or id=ID", p)
		}
	}
	*d = append(*d, disk)
	return nil
}

// netFlags collects repeated --net values: TAP[,mac=XX:XX:XX:XX:XX:XX].
type netFlags []vmm.Net

func (n *netFlags) String() string { return fmt.Sprint(*n) }

func (n *netFlags) Set(s string) error {
	parts := strings.Split(s, ",")
	nic := vmm.Net{Tap: parts[0]}
	if nic.Tap == "" {
		return errors.New("empty tap name")
	}
	for _, p := range parts[1:] {
		mac, ok := strings.CutPrefix(p, "mac=")
		if !ok {
			return fmt.Errorf("net option %q: want mac=XX:XX:XX:XX:XX:XX", p)
		}
		hw, err := net.ParseMAC(mac)
		if err != nil || len(hw) != 6 {
			return fmt.Errorf("net option %q: not a 48-bit MAC", p)
		}
		copy(nic.MAC[:], hw)
	}
	*n = append(*n, nic)
	return nil
}

// Parse turns `run` flags into a VM config and the run's timeout (0: none).
// The serial console goes to stdout unless --serial names a file, which
// the caller closes through the returned io.Closer (nil for stdout).
func Parse(args []string, stdout, stderr io.Writer) (vmm.Config, time.Duration, io.Closer, error) {
	fs := flag.NewFlagSet("vm run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg vmm.Config
	var disks diskFlags
	var nets netFlags
	fs.StringVar(&cfg.Kernel, "kernel", "", "bzImage or ELF vmlinux to boot (required)")
	fs.StringVar(&cfg.Initrd, "initrd", "", "initrd (cpio, optionally compressed)")
	fs.StringVar(&cfg.Cmdline, "append", "console=ttyS0 reboot=k panic=-1", "kernel command line")
	mem := fs.String("mem", "256M", "guest memory: a number of MiB, or with a K, M or G suffix")
	fs.IntVar(&cfg.VCPUs, "cpus", 1, "vCPUs")
	fs.Var(&disks, "disk", "virtio-blk disk: path[,ro][,id=ID] (repeatable)")
	fs.IntVar(&cfg.DiskSlots, "disk-slots", 0, "empty read-only virtio-blk slots after the disks, for disks attached later (vmm.VM.AttachDisk)")
	fs.Var(&nets, "net", "virtio-net over a tap device: TAP[,mac=XX:XX:XX:XX:XX:XX] (repeatable)")
	fs.BoolVar(&cfg.RNG, "rng", false, "add a virtio-rng device")
	fs.BoolVar(&cfg.VirtioMMIOCmdline, "virtio-mmio-cmdline", false, "also list the virtio devices on the command line (virtio_mmio.device=) for kernels without ACPI")
	vsockFlag := fs.String("vsock", "", "virtio-vsock: CID,PATH (host processes connect to PATH; guest connections to port P reach PATH_P)")
	serial := fs.String("serial", "stdout", "where the console (COM1) goes: stdout, or a file")
	timeout := fs.Duration("timeout", 0, "stop the VM after this long (0: never)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: huskctl vm run --kernel PATH [--initrd PATH] [--append CMDLINE] [--mem SIZE] [--cpus N] [--disk PATH[,ro][,id=ID]]... [--disk-slots N] [--net TAP[,mac=MAC]]... [--rng] [--vsock CID,PATH] [--serial stdout|FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, 0, nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() != 0 || cfg.Kernel == "" {
		fs.Usage()
		return cfg, 0, nil, fmt.Errorf("%w: want --kernel and no arguments", ErrUsage)
	}
	size, err := parseSize(*mem)
	if err != nil {
		return cfg, 0, nil, fmt.Errorf("%w: --mem: %w", ErrUsage, err)
	}
	cfg.MemorySize = size
	if cfg.DiskSlots < 0 || cfg.DiskSlots > vmm.MaxVirtioDevices {
		return cfg, 0, nil, fmt.Errorf("%w: --disk-slots %d: want 0 to %d", ErrUsage, cfg.DiskSlots, vmm.MaxVirtioDevices)
	}
	cfg.Disks = disks
	cfg.Nets = nets
	if *vsockFlag != "" {
		cid, path, ok := strings.Cut(*vsockFlag, ",")
		n, err := strconv.ParseUint(cid, 10, 32)
		if !ok || err != nil || path == "" {
			return cfg, 0, nil, fmt.Errorf("%w: --vsock %q: want CID,PATH", ErrUsage, *vsockFlag)
		}
		cfg.Vsock = &vmm.Vsock{CID: n, UDSPath: path}
	}
	var closer io.Closer
	switch *serial {
	case "stdout", "-":
		cfg.Serial = stdout
	default:
		f, err := os.OpenFile(*serial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return cfg, 0, nil, fmt.Errorf("--serial: %w", err)
		}
		cfg.Serial, closer = f, f
	}
	return cfg, *timeout, closer, nil
}

// parseSize reads 256, 256M, 1G, 65536K: MiB without a suffix.
func parseSize(s string) (uint64, error) {
	mult := uint64(1 << 20)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		s = strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// Run boots a VM from `run` flags and waits for it. It logs the outcome,
// with the wall time and device counters, at info level.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) (vmm.ExitReason, error) {
	cfg, timeout, closer, err := Parse(args, stdout, stderr)
	if err != nil {
		return vmm.ExitFailed, err
	}
	if closer != nil {
		defer closer.Close()
	}
	cfg.Log = log
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	v, err := vmm.New(cfg)
	if err != nil {
		return vmm.ExitFailed, err
	}
	defer v.Close()
	built := time.Since(start)
	reason, err := v.Run(ctx)
	s := v.Stats()
	log.Info("vm stopped", "reason", reason, "setup", built.Round(time.Microsecond), "total", time.Since(start).Round(time.Millisecond),
		"first_run_cpu", s.FirstRunCPU.Round(time.Microsecond), "unclaimed", s.UnclaimedAccesses, "exits", s.Exits, "disks", s.Disks, "rng_bytes", s.RNGBytes, "nets", s.Nets, "err", err)
	return reason, err
}

// ExitCode maps a VM's end to a process exit status: 0 for a power-off,
// 2 for a reboot, 3 when stopped, 1 for a failure.
func ExitCode(r vmm.ExitReason, err error) int {
	switch {
	case errors.Is(err, ErrUsage):
		return 64
	case r == vmm.ExitPowerOff && err == nil:
		return 0
	case r == vmm.ExitReboot:
		return 2
	case r == vmm.ExitStopped:
		return 3
	default:
		return 1
	}
}
