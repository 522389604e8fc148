package kvm

import (
	"sync/atomic"
	"unsafe"
)

// RequestExit sets (or clears) kvm_run.immediate_exit. While it is set,
// KVM_RUN returns at once with ExitIntr instead of entering the guest. To
// stop a vCPU that is already inside the guest, also signal its thread;
// setting the flag first closes the race with a Run about to start.
func (c *VCPU) RequestExit(on bool) {
	if c.run == nil {
		return
	}
	var v uint32
	if on {
		v = 1
	}
	// immediate_exit is byte 1 of kvm_run, which is page-aligned; the
	// 4-aligned word at offset 0 holds request_interrupt_window (byte 0,
	// which husk never sets) and two padding bytes. An atomic store of
	// that word is the only race-free way to hand the flag to the vCPU
	// thread, and the mapping lives as long as c.run is non-nil.
	word := (*uint32)(unsafe.Pointer(unsafe.SliceData(c.run)))
	atomic.StoreUint32(word, v<<(8*runImmediateExitOff))
}
