package x86

import (
	"errors"
	"testing"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/memory"
)

func TestSetupLongModeWritesTablesAndRegisters(t *testing.T) {
	mem, err := memory.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var s kvm.Sregs
	if err := SetupLongMode(mem, &s); err != nil {
		t.Fatal(err)
	}
	// Descriptors as the CPU reads them (the values Firecracker and Linux
	// use for flat 64-bit code and data).
	for i, want := range []uint64{0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x008f_8b00_0000_ffff} {
		if got, _ := mem.ReadUint64(GDTAddr + 8*uint64(i)); got != want {
			t.Errorf("GDT[%d] = %#016x, want %#016x", i, got, want)
		}
	}
	for _, pte := range []struct {
		gpa, want uint64
	}{
		{PML4Addr, PDPTAddr | 3},
		{PML4Addr + 8, 0},
		{PDPTAddr, PDAddr | 3},
		{PDPTAddr + 3*8, (PDAddr + 3*memory.PageSize) | 3},
		{PDPTAddr + 4*8, 0},
		{PDAddr, 0x83},
		{PDAddr + 8, 0x20_0083},
		{PDAddr + 3*memory.PageSize + 511*8, 0xffe0_0083}, // last 2 MiB below 4 GiB
	} {
		if got, _ := mem.ReadUint64(pte.gpa); got != pte.want {
			t.Errorf("entry at %#x = %#x, want %#x", pte.gpa, got, pte.want)
		}
	}
	if s.CS.L != 1 || s.CS.DB != 0 || s.CS.Selector != CodeSelector || s.CS.Type != 0xb || s.CS.Limit != 0xffff_ffff {
		t.Errorf("CS = %+v", s.CS)
	}
	if s.SS.Selector != DataSelector || s.SS.DB != 1 || s.SS.Type != 3 || s.DS != s.SS {
		t.Errorf("SS = %+v, DS = %+v", s.SS, s.DS)
	}
	if s.TR.Selector != TSSSelector || s.TR.S != 0 || s.TR.Type != 0xb {
		t.Errorf("TR = %+v", s.TR)
	}
	if s.CR3 != PML4Addr || s.CR0&(cr0PE|cr0PG) != cr0PE|cr0PG || s.CR4&cr4PAE == 0 || s.EFER != eferLME|eferLMA {
		t.Errorf("CR0 %#x CR3 %#x CR4 %#x EFER %#x", s.CR0, s.CR3, s.CR4, s.EFER)
	}
	if s.GDT.Base != GDTAddr || s.GDT.Limit != 31 || s.IDT.Base != IDTAddr {
		t.Errorf("GDTR %+v IDTR %+v", s.GDT, s.IDT)
	}
}

func TestSetupLongModeNeedsLowMemory(t *testing.T) {
	mem, err := memory.New(memory.PageSize) // too small for the page tables
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var s kvm.Sregs
	if err := SetupLongMode(mem, &s); !errors.Is(err, memory.ErrOutOfRange) {
		t.Fatalf("SetupLongMode = %v, want ErrOutOfRange", err)
	}
}

func TestBootState(t *testing.T) {
	r := BootRegs(0x100000)
	if r.RIP != 0x100000 || r.RSI != ZeroPage || r.RSP != BootStack || r.RFLAGS != 2 {
		t.Errorf("regs = %+v", r)
	}
	if f := BootFPU(); f.FCW != 0x37f || f.MXCSR != 0x1f80 {
		t.Errorf("FPU = %#x %#x", f.FCW, f.MXCSR)
	}
	seen := map[uint32]bool{}
	for _, m := range BootMSRs() {
		if seen[m.Index] {
			t.Errorf("MSR %#x twice", m.Index)
		}
		seen[m.Index] = true
	}
}
