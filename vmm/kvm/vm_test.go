package kvm_test

import (
	"errors"
	"testing"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/x86"
)

func openKVM(t *testing.T) *kvm.System {
	t.Helper()
	sys, err := kvm.Open()
	if errors.Is(err, kvm.ErrUnavailable) {
		t.Skipf("needs KVM: %v", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

func TestSupportedCPUIDHasTheBasicLeaves(t *testing.T) {
	entries, err := openKVM(t).SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for _, e := range entries {
		seen[e.Function] = true
	}
	for _, leaf := range []uint32{0, 1, 0x8000_0000} {
		if !seen[leaf] {
			t.Errorf("leaf %#x missing from %d entries", leaf, len(entries))
		}
	}
}

// TestHLTExitsWithoutAnIRQChip drives the bare API: without an in-kernel
// irqchip KVM hands HLT to userspace (with one, it sleeps in the kernel).
func TestHLTExitsWithoutAnIRQChip(t *testing.T) {
	sys := openKVM(t)
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	mem, err := memory.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	r := mem.Regions()[0]
	if err := vm.SetMemory(0, r.GPA, r.Host); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetTSSAddr(0xfffb_d000); err != nil {
		t.Fatal(err)
	}
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	const entry = 0x10000
	if err := mem.WriteAt([]byte{0xf4}, entry); err != nil { // hlt
		t.Fatal(err)
	}
	s, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	if err := x86.SetupLongMode(mem, &s); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetSregs(&s); err != nil {
		t.Fatal(err)
	}
	regs := x86.BootRegs(entry)
	if err := cpu.SetRegs(&regs); err != nil {
		t.Fatal(err)
	}
	exit, err := cpu.Run()
	if err != nil || exit.Reason != kvm.ExitHLT {
		t.Fatalf("Run = %v, %v; want %v", exit.Reason, err, kvm.ExitHLT)
	}
	if regs, err = cpu.Regs(); err != nil || regs.RIP != entry+1 {
		t.Fatalf("RIP = %#x, %v; want %#x", regs.RIP, err, entry+1)
	}
	// immediate_exit: the next Run returns at once without entering.
	cpu.RequestExit(true)
	if exit, err := cpu.Run(); err != nil || exit.Reason != kvm.ExitIntr {
		t.Fatalf("Run with immediate exit = %v, %v; want %v", exit.Reason, err, kvm.ExitIntr)
	}
}
