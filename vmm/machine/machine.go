// Package machine assembles a KVM virtual machine from the pieces below it:
// guest memory with its MMIO hole, a VM with the in-kernel irqchip and PIT,
// and vCPUs with normalised CPUID, boot MSRs and FPU state. Run drives the
// vCPUs, one goroutine locked to its OS thread each, and hands every I/O
// and MMIO exit to the caller's handler.
package machine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/vmm/internal/cleanup"
	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/x86"
)

// Addresses KVM needs on Intel for real-mode emulation: three pages for a
// TSS and one for an identity page table, at the top of the MMIO hole
// below the 4 GiB boundary (where firmware would sit), as Firecracker does.
const (
	tssAddr         = 0xfffb_d000
	identityMapAddr = 0xfffb_c000
)

// MaxVCPUs bounds Config.VCPUs: APIC ids must fit the 8-bit xAPIC id.
const MaxVCPUs = 254

var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("invalid machine config")
	// ErrState reports a call that the machine's state does not allow.
	ErrState = errors.New("machine is not in a state that allows this")
	// ErrPowerOff is returned by an ExitHandler to end Run cleanly: the
	// guest asked to power off. Run then returns nil.
	ErrPowerOff = errors.New("guest powered off")
)

// Config describes a machine.
type Config struct {
	MemorySize uint64 // bytes of guest RAM, a multiple of 4 KiB
	VCPUs      int    // 1..MaxVCPUs
}

// state is the machine's lifecycle: created → running → stopped → closed.
type state int

const (
	stateCreated state = iota
	stateRunning
	stateStopped
	stateClosed
)

func (s state) String() string {
	return [...]string{"created", "running", "stopped", "closed"}[s]
}

// Machine is a VM with its memory and vCPUs.
type Machine struct {
	mem   *memory.Memory
	vm    *kvm.VM
	vcpus []*vcpu
	undo  func() // closes everything New created, in reverse

	mu    sync.Mutex
	state state // guarded by mu

	// firstRunCPU is the process's CPU time (user+system, nanoseconds)
	// when vCPU 0 first entered KVM_RUN; 0 before (see FirstRunCPU).
	firstRunCPU atomic.Int64
}

// FirstRunCPU returns the CPU time (user + system) the whole process had
// used when vCPU 0 entered KVM_RUN for the first time: the VMM's cost from
// process start to the first guest instruction (TARGETS.md P7). ok is
// false until then, or if getrusage failed.
func (m *Machine) FirstRunCPU() (cpu time.Duration, ok bool) {
	n := m.firstRunCPU.Load()
	return time.Duration(n), n > 0
}

// recordFirstRun stores the process's CPU time; vCPU 0 calls it once, just
// before its first KVM_RUN.
func (m *Machine) recordFirstRun() {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return
	}
	m.firstRunCPU.Store(ru.Utime.Nano() + ru.Stime.Nano())
}

// New creates the machine: nothing runs until Run.
func New(cfg Config) (_ *Machine, err error) {
	if cfg.VCPUs < 1 || cfg.VCPUs > MaxVCPUs {
		return nil, fmt.Errorf("%w: %d vCPUs, want 1..%d", ErrConfig, cfg.VCPUs, MaxVCPUs)
	}
	var cu cleanup.Cleanup
	defer cu.Clean()

	sys, err := kvm.Open()
	if err != nil {
		return nil, err
	}
	defer sys.Close() // VMs outlive the /dev/kvm descriptor
	cpuid, err := sys.SupportedCPUID()
	if err != nil {
		return nil, err
	}
	tscDeadline := sys.TSCDeadlineTimer()
	m := &Machine{}
	if m.mem, err = memory.New(cfg.MemorySize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cu.Add(func() { m.mem.Close() })
	if m.vm, err = sys.CreateVM(); err != nil {
		return nil, err
	}
	cu.Add(func() { m.vm.Close() }) // after the vCPUs, before the memory
	if err := m.setupVM(); err != nil {
		return nil, err
	}
	for i := range cfg.VCPUs {
		v, err := m.vm.CreateVCPU(i)
		if err != nil {
			return nil, err
		}
		cu.Add(func() { v.Close() })
		c := kvm.NormalizeCPUID(cpuid, i, cfg.VCPUs)
		if tscDeadline {
			kvm.SetTSCDeadline(c)
		}
		if err := setupVCPU(v, c); err != nil {
			return nil, err
		}
		m.vcpus = append(m.vcpus, &vcpu{VCPU: v})
	}
	m.undo = cu.Release()
	return m, nil
}

func (m *Machine) setupVM() error {
	if err := m.vm.SetTSSAddr(tssAddr); err != nil {
		return err
	}
	if err := m.vm.SetIdentityMapAddr(identityMapAddr); err != nil {
		return err
	}
	for i, r := range m.mem.Regions() {
		if err := m.vm.SetMemory(uint32(i), r.GPA, r.Host); err != nil {
			return err
		}
	}
	if err := m.vm.CreateIRQChip(); err != nil {
		return err
	}
	return m.vm.CreatePIT()
}

func setupVCPU(v *kvm.VCPU, cpuid []kvm.CPUIDEntry) error {
	if err := v.SetCPUID(cpuid); err != nil {
		return err
	}
	if err := v.SetMSRs(x86.BootMSRs()); err != nil {
		return err
	}
	fpu := x86.BootFPU()
	return v.SetFPU(&fpu)
}

// Memory returns guest RAM.
func (m *Machine) Memory() *memory.Memory { return m.mem }

// VM returns the KVM VM, to register ioeventfds and irqfds.
func (m *Machine) VM() *kvm.VM { return m.vm }

// BootLongMode prepares vCPU 0 to start executing 64-bit code at entry,
// with the boot GDT and identity page tables of package x86 written into
// guest memory. The other vCPUs wait for INIT/SIPI from vCPU 0, as on
// hardware.
func (m *Machine) BootLongMode(entry uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateCreated {
		return fmt.Errorf("%w: boot state set while %v", ErrState, m.state)
	}
	bsp := m.vcpus[0]
	sregs, err := bsp.Sregs()
	if err != nil {
		return err
	}
	if err := x86.SetupLongMode(m.mem, &sregs); err != nil {
		return err
	}
	if err := bsp.SetSregs(&sregs); err != nil {
		return err
	}
	regs := x86.BootRegs(entry)
	return bsp.SetRegs(&regs)
}

// BootPVH prepares vCPU 0 for a PVH entry at entry: 32-bit protected mode
// without paging, EBX at the hvm_start_info at startInfo.
func (m *Machine) BootPVH(entry, startInfo uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateCreated {
		return fmt.Errorf("%w: boot state set while %v", ErrState, m.state)
	}
	bsp := m.vcpus[0]
	sregs, err := bsp.Sregs()
	if err != nil {
		return err
	}
	if err := x86.SetupPVH(m.mem, &sregs); err != nil {
		return err
	}
	if err := bsp.SetSregs(&sregs); err != nil {
		return err
	}
	regs := x86.PVHRegs(entry, startInfo)
	return bsp.SetRegs(&regs)
}

// Close releases the vCPUs, the VM and guest memory. It must not be called
// while Run is running.
func (m *Machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateRunning:
		return fmt.Errorf("%w: Close while running", ErrState)
	case stateClosed:
		return nil
	}
	m.state = stateClosed
	m.undo()
	return nil
}
