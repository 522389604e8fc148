package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ExitReason is kvm_run.exit_reason (KVM_EXIT_*).
type ExitReason uint32

// Exit reasons the VMM meets on x86-64.
const (
	ExitUnknown       ExitReason = 0
	ExitException     ExitReason = 1
	ExitIO            ExitReason = 2
	ExitDebug         ExitReason = 4
	ExitHLT           ExitReason = 5
	ExitMMIO          ExitReason = 6
	ExitShutdown      ExitReason = 8
	ExitFailEntry     ExitReason = 9
	ExitIntr          ExitReason = 10
	ExitInternalError ExitReason = 17
	ExitSystemEvent   ExitReason = 24
)

var exitNames = map[ExitReason]string{
	ExitUnknown: "UNKNOWN", ExitException: "EXCEPTION", ExitIO: "IO", ExitDebug: "DEBUG",
	ExitHLT: "HLT", ExitMMIO: "MMIO", ExitShutdown: "SHUTDOWN", ExitFailEntry: "FAIL_ENTRY",
	ExitIntr: "INTR", ExitInternalError: "INTERNAL_ERROR", ExitSystemEvent: "SYSTEM_EVENT",
}

func (r ExitReason) String() string {
	if s, ok := exitNames[r]; ok {
		return "KVM_EXIT_" + s
	}
	return fmt.Sprintf("KVM_EXIT_%d", uint32(r))
}

// Exit is one return from KVM_RUN that the VMM handles.
type Exit struct {
	Reason ExitReason

	// For ExitIO and ExitMMIO:
	Addr  uint64 // port number or guest physical address
	Write bool   // the guest wrote (OUT, MMIO store) rather than read
	Size  int    // bytes per access: 1, 2 or 4 for I/O; 1-8 for MMIO
	// Data is the access's bytes in the kvm_run page: Size bytes, or
	// Size*count for string I/O (REP INS/OUTS). For a read, the handler
	// stores the value here.
	Data []byte
}

// ErrShutdown reports a guest shutdown: a triple fault, or a reset the
// guest asked for that KVM cannot do. The vCPU cannot continue.
var ErrShutdown = errors.New("guest shutdown (triple fault or reset)")

// InternalError is KVM_EXIT_INTERNAL_ERROR: KVM could not emulate what the
// guest did. The vCPU cannot continue.
type InternalError struct {
	Suberror uint32
	Data     []uint64
}

func (e *InternalError) Error() string {
	return fmt.Sprintf("KVM internal error: suberror %d, data %#x", e.Suberror, e.Data)
}

// FailEntryError is KVM_EXIT_FAIL_ENTRY: the hardware refused to enter the
// guest, usually because of inconsistent register state.
type FailEntryError struct {
	Reason uint64 // hardware_entry_failure_reason
	CPU    uint32
}

func (e *FailEntryError) Error() string {
	return fmt.Sprintf("KVM entry failed: hardware reason %#x on host CPU %d", e.Reason, e.CPU)
}

// UnexpectedExitError is an exit the VMM never asked for.
type UnexpectedExitError struct {
	Reason ExitReason
}

func (e *UnexpectedExitError) Error() string {
	return fmt.Sprintf("unexpected exit %v", e.Reason)
}

// kvm_run layout (x86-64), pinned against <linux/kvm.h>.
const (
	runImmediateExitOff = 1
	runExitReasonOff    = 8
	runExitDataOff      = 32 // the union of per-exit data
	runMinSize          = 0x930
	maxInternalData     = 16
)

// decodeExit reads the exit the kernel left in kvm_run. The values
// describe what the guest did, so sizes and offsets are checked against
// the mapping before use even though the kernel wrote them.
func (c *VCPU) decodeExit() (Exit, error) {
	le := binary.LittleEndian
	reason := ExitReason(le.Uint32(c.run[runExitReasonOff:]))
	d := c.run[runExitDataOff:]
	switch reason {
	case ExitIO:
		// struct { u8 direction, size; u16 port; u32 count; u64 data_offset; }
		size, count := int(d[1]), uint64(le.Uint32(d[4:]))
		off := le.Uint64(d[8:])
		n := uint64(size) * count
		if size == 0 || off > uint64(len(c.run)) || n > uint64(len(c.run))-off {
			return Exit{}, fmt.Errorf("vCPU %d: I/O exit with %d×%d bytes at offset %d outside kvm_run", c.id, size, count, off)
		}
		return Exit{Reason: reason, Addr: uint64(le.Uint16(d[2:])), Write: d[0] == 1, Size: size, Data: c.run[off : off+n : off+n]}, nil
	case ExitMMIO:
		// struct { u64 phys_addr; u8 data[8]; u32 len; u8 is_write; }
		n := le.Uint32(d[16:])
		if n == 0 || n > 8 {
			return Exit{}, fmt.Errorf("vCPU %d: MMIO exit of %d bytes", c.id, n)
		}
		return Exit{Reason: reason, Addr: le.Uint64(d), Write: d[20] != 0, Size: int(n), Data: d[8 : 8+n : 8+n]}, nil
	case ExitHLT, ExitIntr:
		return Exit{Reason: reason}, nil
	case ExitShutdown:
		return Exit{}, fmt.Errorf("vCPU %d: %w", c.id, ErrShutdown)
	case ExitFailEntry:
		return Exit{}, fmt.Errorf("vCPU %d: %w", c.id, &FailEntryError{Reason: le.Uint64(d), CPU: le.Uint32(d[8:])})
	case ExitInternalError:
		e := &InternalError{Suberror: le.Uint32(d)}
		for i := range min(le.Uint32(d[4:]), maxInternalData) {
			e.Data = append(e.Data, le.Uint64(d[8+8*i:]))
		}
		return Exit{}, fmt.Errorf("vCPU %d: %w", c.id, e)
	default:
		return Exit{}, fmt.Errorf("vCPU %d: %w", c.id, &UnexpectedExitError{Reason: reason})
	}
}
