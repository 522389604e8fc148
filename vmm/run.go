package vmm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/huskrt/husk/vmm/devices/power"
	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/machine"
	"github.com/huskrt/husk/vmm/virtio/vsock"
)

// ErrState reports a call the VM's state does not allow.
var ErrState = errors.New("VM is not in a state that allows this")

// Run runs the VM until the guest powers off or reboots, a vCPU fails, or
// ctx is done, and says which. The error is nil unless the reason is
// ExitFailed (the vCPU's error) or ExitStopped (ctx's error). A VM runs
// once: Run is Start then Wait.
func (v *VM) Run(ctx context.Context) (ExitReason, error) {
	if err := v.Start(ctx); err != nil {
		return ExitFailed, err
	}
	return v.Wait()
}

// Start starts the vCPUs and returns; Wait waits for the end.
func (v *VM) Start(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.started {
		return fmt.Errorf("%w: already started", ErrState)
	}
	v.started = true
	ctx, v.cancel = context.WithCancel(ctx)
	v.timer.Start(time.Now())
	go func() {
		err := v.m.Run(ctx, v.handleExit)
		v.reason, v.runErr = classify(ctx, err)
		close(v.done)
	}()
	return nil
}

// Stop stops a started VM; Wait then returns ExitStopped.
func (v *VM) Stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cancel != nil {
		v.cancel()
	}
}

// Wait waits for a started VM to stop and returns why (see Run).
func (v *VM) Wait() (ExitReason, error) {
	v.mu.Lock()
	started := v.started
	v.mu.Unlock()
	if !started {
		return ExitFailed, fmt.Errorf("%w: not started", ErrState)
	}
	<-v.done
	return v.reason, v.runErr
}

func classify(ctx context.Context, err error) (ExitReason, error) {
	switch {
	case err == nil:
		return ExitPowerOff, nil
	case errors.Is(err, power.ErrReboot):
		return ExitReboot, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ExitStopped, err
	default:
		return ExitFailed, err
	}
}

// Close releases everything the VM holds. It must not be called while the
// VM runs; Stop and Wait first.
func (v *VM) Close() error {
	v.mu.Lock()
	started := v.started
	v.mu.Unlock()
	if started {
		select {
		case <-v.done:
		default:
			return fmt.Errorf("%w: Close while running", ErrState)
		}
	}
	v.slots.close() // no AttachDisk or DetachDisk from now on
	if v.undo != nil {
		v.undo()
		v.undo = nil
	}
	return nil
}

// handleExit dispatches a vCPU's I/O or MMIO exit to the bus. String I/O
// (REP INS/OUTS) is split into its elements.
func (v *VM) handleExit(cpu int, e kvm.Exit) error {
	b := &v.pio
	if e.Reason == kvm.ExitMMIO {
		b = &v.mmio
	}
	for off := 0; off+e.Size <= len(e.Data); off += e.Size {
		d := e.Data[off : off+e.Size]
		if !e.Write {
			if !b.Read(e.Addr, d) {
				v.unclaimed(cpu, e)
			}
			continue
		}
		claimed, err := b.Write(e.Addr, d)
		if err != nil {
			if errors.Is(err, power.ErrPowerOff) {
				return fmt.Errorf("%w: %w", machine.ErrPowerOff, err)
			}
			return err
		}
		if !claimed {
			v.unclaimed(cpu, e)
		}
	}
	return nil
}

// unclaimed counts an access no device owns and logs the first few: the
// guest probing for hardware that is not there.
func (v *VM) unclaimed(cpu int, e kvm.Exit) {
	const logged = 32
	if n := v.unhandled.Add(1); n <= logged {
		kind := "port"
		if e.Reason == kvm.ExitMMIO {
			kind = "mmio"
		}
		v.log.Debug("unclaimed access", "cpu", cpu, "kind", kind, "addr", fmt.Sprintf("%#x", e.Addr), "size", e.Size, "write", e.Write)
	}
}

// Stats is what a VM's devices have done.
type Stats struct {
	UnclaimedAccesses uint64
	// Exits counts the vCPUs' returns from KVM_RUN by kind, keyed by the
	// Exit* names below, each of them always present.
	Exits map[string]uint64
	// Disks are the boot disks, then the slots (Config.DiskSlots).
	Disks    []DiskStats
	RNGBytes uint64
	Nets     []NetStats
	// BootMarks are the times, from Start, at which the guest wrote the
	// boot timer (BootTimerAddr).
	BootMarks []time.Duration
	// FirstRunCPU is the CPU time (user + system) the whole process had
	// used when vCPU 0 first entered the guest: process start to first
	// guest instruction (TARGETS.md P7). 0 before that.
	FirstRunCPU time.Duration
}

// NetStats counts one network device's frames: transmitted by the guest,
// received by it, and dropped either way.
type NetStats struct {
	TxFrames, TxBytes, TxDropped uint64
	RxFrames, RxBytes, RxDropped uint64
}

// DiskStats counts one disk's requests since its backend last changed (a
// slot's counters restart with each AttachDisk and DetachDisk).
type DiskStats struct {
	ID                      string // the disk's id (its serial in the guest); "" for an empty slot
	Empty                   bool   // an empty slot
	Reads, Writes, Flushes  uint64
	BytesRead, BytesWritten uint64
	Errors, Malformed       uint64
}

// The keys of Stats.Exits.
const (
	ExitsIO          = "io"          // port I/O, handled by the VMM
	ExitsMMIO        = "mmio"        // MMIO, handled by the VMM
	ExitsHLT         = "hlt"         // none with the in-kernel irqchip; one would end its vCPU
	ExitsInterrupted = "interrupted" // a stop's kick, a stray signal, an AP woken by SIPI
	ExitsOther       = "other"       // anything else; each ended its vCPU
)

// Stats returns the VM's counters.
func (v *VM) Stats() Stats {
	s := Stats{UnclaimedAccesses: v.unhandled.Load(), BootMarks: v.timer.Marks()}
	s.FirstRunCPU, _ = v.m.FirstRunCPU()
	e := v.m.Exits()
	s.Exits = map[string]uint64{ExitsIO: e.IO, ExitsMMIO: e.MMIO, ExitsHLT: e.HLT, ExitsInterrupted: e.Interrupted, ExitsOther: e.Other}
	for _, d := range v.disks {
		ds := d.Stats()
		s.Disks = append(s.Disks, DiskStats{ds.ID, ds.Empty, ds.Reads, ds.Writes, ds.Flushes, ds.BytesRead, ds.BytesWritten, ds.Errors, ds.Malformed})
	}
	for _, n := range v.nets {
		ns := n.Stats()
		s.Nets = append(s.Nets, NetStats(ns))
	}
	if v.rng != nil {
		s.RNGBytes = v.rng.Bytes()
	}
	return s
}

// ErrNoVsock reports Dial on a VM without a vsock device.
var ErrNoVsock = errors.New("VM has no vsock device")

// DialTimeout bounds Dial: the device's handshake and the guest's answer.
const DialTimeout = 10 * time.Second

// Dial connects to the guest's vsock port through the hybrid vsock's Unix
// socket ("CONNECT <port>\n", then "OK <host port>\n" from the device); the
// returned connection carries only the guest's bytes. An error wrapping
// vsock.ErrDialRefused means the guest did not accept it.
func (v *VM) Dial(port uint32) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	defer cancel()
	return v.DialContext(ctx, port)
}

// DialContext is Dial with a context bounding the connection's setup.
func (v *VM) DialContext(ctx context.Context, port uint32) (net.Conn, error) {
	if v.vsockPath == "" {
		return nil, ErrNoVsock
	}
	c, _, err := vsock.Dial(ctx, v.vsockPath, port)
	return c, err
}
