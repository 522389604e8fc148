package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huskrt/husk/vmm/acpi"
	"github.com/huskrt/husk/vmm/boot"
	"github.com/huskrt/husk/vmm/bus"
	"github.com/huskrt/husk/vmm/devices/boottimer"
	"github.com/huskrt/husk/vmm/devices/power"
	"github.com/huskrt/husk/vmm/devices/serial"
	"github.com/huskrt/husk/vmm/internal/cleanup"
	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/machine"
	"github.com/huskrt/husk/vmm/virtio"
	"github.com/huskrt/husk/vmm/virtio/blk"
	"github.com/huskrt/husk/vmm/virtio/mmio"
	virtionet "github.com/huskrt/husk/vmm/virtio/net"
	"github.com/huskrt/husk/vmm/virtio/rng"
	"github.com/huskrt/husk/vmm/virtio/vsock"
)

// Config describes a VM.
type Config struct {
	Kernel  string // path to a bzImage or an ELF vmlinux
	Initrd  string // path to an initrd; optional
	Cmdline string
	// MemorySize is guest RAM in bytes, a multiple of 4 KiB.
	MemorySize uint64
	VCPUs      int
	// Serial receives the guest's console (COM1); nil discards it.
	Serial io.Writer
	Disks  []Disk
	// DiskSlots is how many empty, read-only virtio-blk devices follow
	// the boot disks, for AttachDisk (a container created after boot). A
	// driver learns whether a disk is read-only only when it probes it, so
	// a slot is read-only for the VM's life: containers' root filesystems
	// are read-only images (EROFS), which is what slots are for today.
	DiskSlots int
	// RNG adds a virtio entropy device.
	RNG bool
	// Vsock, when set, adds a virtio-vsock device whose host side is a
	// Unix socket (Firecracker's hybrid vsock).
	Vsock *Vsock
	// Nets are virtio-net devices, each over a tap device.
	Nets []Net
	// VirtioMMIOCmdline also names each virtio device on the command line
	// (virtio_mmio.device=), for kernels built with
	// CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES that do not read ACPI. A kernel
	// that reads both would see each device twice.
	VirtioMMIOCmdline bool
	// Log receives the VMM's diagnostics; nil discards them.
	Log *slog.Logger
}

// Disk is a file-backed virtio block device.
type Disk struct {
	Path     string
	ReadOnly bool
	ID       string // returned to the guest by GET_ID (at most 20 bytes)
}

// Net is a virtio-net device whose host side is the tap device Tap
// (opened, or created if the process may; it must be up to pass frames)
// or File, a tap queue opened elsewhere with IFF_TAP | IFF_NO_PI (the VM
// uses a duplicate: the caller keeps File). A zero MAC becomes
// 06:00:ac:10:00:<index+1>, locally administered.
type Net struct {
	Tap  string
	File *os.File
	MAC  [6]byte
}

// Vsock is the guest's socket address and the host's Unix socket: host
// processes connect to UDSPath and send "CONNECT <port>\n"; guest
// connections to the host (CID 2) on port P reach UDSPath_P.
type Vsock struct {
	CID     uint64
	UDSPath string
}

// ExitReason says why a VM stopped.
type ExitReason int

const (
	// ExitPowerOff: the guest powered off.
	ExitPowerOff ExitReason = iota
	// ExitReboot: the guest asked to reboot (or panicked with panic=-1);
	// the VM does not restart.
	ExitReboot
	// ExitStopped: the host stopped it (Stop, or Run's context).
	ExitStopped
	// ExitFailed: a vCPU failed (triple fault, KVM error).
	ExitFailed
)

func (r ExitReason) String() string {
	return [...]string{"power-off", "reboot", "stopped", "failed"}[r]
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("invalid VM config")

// VM is a booted-but-not-yet-running virtual machine.
type VM struct {
	m     *machine.Machine
	log   *slog.Logger
	pio   bus.Bus
	mmio  bus.Bus
	disks []*blk.Device // the boot disks, then the slots (window order)
	slots slotTable     // for AttachDisk and DetachDisk
	rng   *rng.Device
	nets  []*virtionet.Device
	// vsockPath is the hybrid vsock's Unix socket, "" without vsock.
	vsockPath string
	uart      *serial.UART
	timer     *boottimer.Timer
	undo      func()

	unhandled atomic.Uint64 // accesses no device claimed

	mu      sync.Mutex
	cancel  context.CancelFunc // guarded by mu; set by Start
	done    chan struct{}      // closed when the run started by Start ends
	reason  ExitReason         // valid after done
	runErr  error              // valid after done
	started bool               // guarded by mu
}

// New builds a VM: guest memory, vCPUs, devices, ACPI tables and the
// kernel loaded and ready to run. Nothing runs until Start or Run.
func New(cfg Config) (_ *VM, err error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	var cu cleanup.Cleanup
	defer cu.Clean()
	v := &VM{log: cfg.Log, done: make(chan struct{})}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.slots.log = v.log
	if v.m, err = machine.New(machine.Config{MemorySize: cfg.MemorySize, VCPUs: cfg.VCPUs}); err != nil {
		return nil, err
	}
	cu.Add(func() { v.m.Close() })

	if err := v.addLegacyDevices(&cu, cfg.Serial); err != nil {
		return nil, err
	}
	var devices []virtio.Device
	for _, d := range cfg.Disks {
		dev, err := blk.Open(d.Path, d.ReadOnly, d.ID)
		if err != nil {
			return nil, err
		}
		cu.Add(func() { dev.Close() }) // after its transport's Close resets it
		v.disks = append(v.disks, dev)
		v.slots.boot = append(v.slots.boot, dev)
		devices = append(devices, dev)
	}
	for range cfg.DiskSlots {
		dev, err := blk.New(blk.Config{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		cu.Add(func() { dev.Close() }) // closes the file AttachDisk gave it
		v.disks = append(v.disks, dev)
		v.slots.slots = append(v.slots.slots, dev)
		devices = append(devices, dev)
	}
	if cfg.RNG {
		v.rng = rng.New()
		devices = append(devices, v.rng)
	}
	for i, n := range cfg.Nets {
		var tap *os.File
		if n.File != nil {
			tap, err = virtionet.TapFile(n.File)
		} else {
			tap, err = virtionet.OpenTap(n.Tap)
		}
		if err != nil {
			return nil, err
		}
		mac := n.MAC
		if mac == ([6]byte{}) {
			mac = [6]byte{0x06, 0x00, 0xac, 0x10, 0x00, byte(i + 1)}
		}
		dev, err := virtionet.New(virtionet.Config{MAC: mac, Backend: tap, Log: v.log})
		if err != nil {
			tap.Close()
			return nil, err
		}
		cu.Add(func() { dev.Close() }) // after its transport's Close resets it
		v.nets = append(v.nets, dev)
		devices = append(devices, dev)
	}
	if cfg.Vsock != nil {
		dev, err := vsock.New(vsock.Config{CID: cfg.Vsock.CID, UDSPath: cfg.Vsock.UDSPath, Log: v.log})
		if err != nil {
			return nil, err
		}
		cu.Add(func() { dev.Close() }) // after its transport's Close resets it
		devices = append(devices, dev)
		v.vsockPath = cfg.Vsock.UDSPath
	}
	windows, err := v.addVirtioDevices(&cu, devices)
	if err != nil {
		return nil, err
	}
	if err := v.load(cfg, windows); err != nil {
		return nil, err
	}
	v.undo = cu.Release()
	return v, nil
}

func checkConfig(cfg *Config) error {
	if cfg.Kernel == "" {
		return fmt.Errorf("%w: no kernel", ErrConfig)
	}
	if cfg.VCPUs == 0 {
		cfg.VCPUs = 1
	}
	for _, n := range cfg.Nets {
		if (n.Tap == "") == (n.File == nil) || n.MAC[0]&1 != 0 {
			return fmt.Errorf("%w: net %+v: want a tap name or an open tap (not both) and a unicast MAC", ErrConfig, n)
		}
	}
	if cfg.DiskSlots < 0 {
		return fmt.Errorf("%w: %d disk slots", ErrConfig, cfg.DiskSlots)
	}
	if n := len(cfg.Disks) + cfg.DiskSlots + len(cfg.Nets) + btoi(cfg.RNG) + btoi(cfg.Vsock != nil); n > MaxVirtioDevices {
		return fmt.Errorf("%w: %d virtio devices, at most %d", ErrConfig, n, MaxVirtioDevices)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// interrupt creates an irqfd for gsi and returns the function that raises
// it.
func (v *VM) interrupt(cu *cleanup.Cleanup, gsi uint32) (func() error, error) {
	e, err := kvm.NewEventFD()
	if err != nil {
		return nil, err
	}
	cu.Add(func() { e.Close() })
	if err := v.m.VM().RegisterIRQFD(e, gsi); err != nil {
		return nil, err
	}
	return e.Signal, nil
}

// addLegacyDevices puts COM1, the i8042 and the ACPI power registers on
// the port bus, and the boot timer on the MMIO bus.
func (v *VM) addLegacyDevices(cu *cleanup.Cleanup, console io.Writer) error {
	irq, err := v.interrupt(cu, serial.COM1IRQ)
	if err != nil {
		return err
	}
	v.uart = serial.New(console, irq)
	v.timer = &boottimer.Timer{OnMark: func(d time.Duration) {
		v.log.Info("guest boot mark", "since_start", d.Round(time.Microsecond))
	}}
	if err := v.mmio.Add(BootTimerAddr, boottimer.Size, v.timer); err != nil {
		return err
	}
	for _, d := range []struct {
		base, size uint64
		dev        bus.Device
	}{
		{serial.COM1Base, serial.Size, v.uart},
		{power.I8042Base, power.I8042Size, power.I8042{}},
		{sleepPort, 1, &power.SleepControl{S5: acpi.SleepTypeS5}},
		{resetPort, 1, &power.ResetRegister{Value: resetValue}},
	} {
		if err := v.pio.Add(d.base, d.size, d.dev); err != nil {
			return err
		}
	}
	return nil
}

// addVirtioDevices gives each device a virtio-mmio window, an irqfd and
// one ioeventfd per queue, and returns the windows for ACPI.
func (v *VM) addVirtioDevices(cu *cleanup.Cleanup, devices []virtio.Device) ([]acpi.MMIODevice, error) {
	var windows []acpi.MMIODevice
	for i, dev := range devices {
		w := acpi.MMIODevice{Base: virtioMMIOBase + uint64(i)*mmio.WindowSize, Size: mmio.WindowSize, GSI: firstVirtioGSI + uint32(i)}
		irq, err := v.interrupt(cu, w.GSI)
		if err != nil {
			return nil, err
		}
		t, err := mmio.New(mmio.Config{Mem: v.m.Memory(), Device: dev, Interrupt: irq, Log: v.log})
		if err != nil {
			return nil, err
		}
		cu.Add(t.Close)
		for _, ev := range t.IOEvents(w.Base) {
			if err := v.m.VM().RegisterIOEvent(ev.Event, ev.FD); err != nil {
				return nil, err
			}
		}
		if err := v.mmio.Add(w.Base, w.Size, t); err != nil {
			return nil, err
		}
		windows = append(windows, w)
	}
	return windows, nil
}

// load writes the ACPI tables, kernel, initrd and boot parameters, and
// points vCPU 0 at the kernel.
func (v *VM) load(cfg Config, windows []acpi.MMIODevice) error {
	tables, err := acpi.Build(boot.ACPIStart, acpiConfig(cfg.VCPUs, windows))
	if err != nil {
		return err
	}
	if len(tables) > boot.ACPIEnd-boot.ACPIStart {
		return fmt.Errorf("%w: %d bytes of ACPI tables", ErrConfig, len(tables))
	}
	mem := v.m.Memory()
	if err := mem.WriteAt(tables, boot.ACPIStart); err != nil {
		return fmt.Errorf("write ACPI tables: %w", err)
	}
	kf, kernel, err := openBootFile(cfg.Kernel)
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	defer kf.Close()
	bc := boot.Config{Kernel: kernel, RSDP: boot.ACPIStart}
	if cfg.Initrd != "" {
		f, initrd, err := openBootFile(cfg.Initrd)
		if err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
		defer f.Close()
		bc.Initrd = initrd
	}
	cmdline := cfg.Cmdline
	if cfg.VirtioMMIOCmdline {
		cmdline = withVirtioMMIODevices(cmdline, windows)
	}
	bc.Cmdline = cmdline
	entry, err := boot.Load(mem, bc)
	if err != nil {
		return fmt.Errorf("load %s: %w", cfg.Kernel, err)
	}
	v.log.Debug("kernel loaded", "mode", entry.Mode, "entry", fmt.Sprintf("%#x", entry.Addr), "initrd", fmt.Sprintf("%#x", entry.InitrdAddr))
	switch entry.Mode {
	case boot.ModePVH:
		return v.m.BootPVH(entry.Addr, entry.Param)
	default:
		return v.m.BootLongMode(entry.Addr)
	}
}

// withVirtioMMIODevices appends virtio_mmio.device=<size>@<base>:<irq>
// for each window.
func withVirtioMMIODevices(cmdline string, windows []acpi.MMIODevice) string {
	parts := []string{cmdline}
	for _, w := range windows {
		parts = append(parts, fmt.Sprintf("virtio_mmio.device=%d@%#x:%d", w.Size, w.Base, w.GSI))
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}
