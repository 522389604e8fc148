package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/huskrt/husk/vmm"
)

// guestCID is the guest's vsock address. Each VM has its own hybrid vsock
// socket, so every guest can have the same one.
const guestCID = 3

// machine is the VM as the VMM process drives it: vmm.VM, or a stand-in
// in tests.
type machine interface {
	// Start starts the vCPUs.
	Start() error
	// Wait waits for the end and returns the process's exit code for it.
	Wait() int
	Stop()
	AttachDisk(f *os.File, readOnly bool, serial string) error
	DetachDisk(serial string) error
	Stats() *childStats
}

// The VMM process's exit codes. 2 is avoided: it is what a Go panic or
// fatal runtime error exits with.
const (
	exitPowerOff = 0
	exitFailed   = 1
	exitReboot   = 10
	exitStopped  = 11
)

// newMachine builds the VM in the VMM process; tests replace it.
var newMachine = newVMM

// vmmMachine is a machine on husk's VMM.
type vmmMachine struct {
	v   *vmm.VM
	log *slog.Logger
}

// newVMM builds cfg's VM: it opens /dev/kvm, maps guest memory, loads the
// kernel and initrd and creates the hybrid vsock's socket as vsockName in
// the current directory (the VM's).
func newVMM(cfg *childConfig, console io.Writer, log *slog.Logger) (machine, error) {
	var nets []vmm.Net
	for i, n := range cfg.Nets {
		mac, err := net.ParseMAC(n.MAC)
		if err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("NIC %s: MAC %q: %w", n.ID, n.MAC, vmm.ErrConfig)
		}
		nets = append(nets, vmm.Net{File: cfg.Taps[i], MAC: [6]byte(mac)})
	}
	v, err := vmm.New(vmm.Config{
		Kernel:     cfg.Kernel,
		Initrd:     cfg.Initrd,
		Cmdline:    cfg.Cmdline,
		MemorySize: cfg.MemoryMiB << 20,
		VCPUs:      cfg.VCPUs,
		Serial:     console,
		DiskSlots:  cfg.DiskSlots,
		RNG:        true,
		Vsock:      &vmm.Vsock{CID: guestCID, UDSPath: vsockName},
		Nets:       nets,
		Log:        log,
	})
	if err != nil {
		return nil, err
	}
	return &vmmMachine{v: v, log: log}, nil
}

func (m *vmmMachine) Start() error { return m.v.Start(context.Background()) }

func (m *vmmMachine) Wait() int {
	reason, err := m.v.Wait()
	// first_run_cpu: this process's CPU from its start to the guest's
	// first instruction (TARGETS.md P7; the bench reads it here).
	m.log.Info("vm stopped", "reason", reason, "error", err, "first_run_cpu", m.v.Stats().FirstRunCPU)
	switch reason {
	case vmm.ExitPowerOff:
		return exitPowerOff
	case vmm.ExitReboot:
		return exitReboot
	case vmm.ExitStopped:
		return exitStopped
	default:
		return exitFailed
	}
}

func (m *vmmMachine) Stop() { m.v.Stop() }

func (m *vmmMachine) AttachDisk(f *os.File, readOnly bool, serial string) error {
	return m.v.AttachDisk(f, readOnly, serial)
}

func (m *vmmMachine) DetachDisk(serial string) error { return m.v.DetachDisk(serial) }

func (m *vmmMachine) Stats() *childStats {
	s := m.v.Stats()
	cs := &childStats{Exits: s.Exits}
	for _, d := range s.Disks {
		if d.Empty || d.ID == "" {
			continue
		}
		cs.Disks = append(cs.Disks, childDiskStats{
			Serial: d.ID, Reads: d.Reads, Writes: d.Writes, BytesRead: d.BytesRead, BytesWritten: d.BytesWritten,
		})
	}
	return cs
}

// errorCode classifies a machine's error for the parent.
func errorCode(err error) string {
	switch {
	case errors.Is(err, vmm.ErrNoFreeSlot):
		return codeNoFreeSlot
	case errors.Is(err, vmm.ErrDiskExists):
		return codeExists
	case errors.Is(err, vmm.ErrDiskNotFound):
		return codeNotFound
	case errors.Is(err, vmm.ErrBadDisk), errors.Is(err, vmm.ErrConfig):
		return codeInvalid
	default:
		return codeFailed
	}
}
