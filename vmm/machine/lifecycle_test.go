package machine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/kvm"
)

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MemorySize: testRAM, VCPUs: 0},
		{MemorySize: testRAM, VCPUs: MaxVCPUs + 1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	_, err := New(Config{MemorySize: testRAM + 1, VCPUs: 1})
	if errors.Is(err, kvm.ErrUnavailable) {
		t.Skipf("needs KVM: %v", err)
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("odd memory size: %v, want ErrConfig", err)
	}
}

func TestCPUIDAndMSRsReachTheGuest(t *testing.T) {
	// Two vCPUs: the second waits for a SIPI that never comes, so this
	// also shows Run stops a vCPU blocked inside KVM.
	m := newMachineN(t, cpuidGuest, 2)
	got := run(t, m, nil, nil)
	if len(got) != 3 {
		t.Fatalf("exits %+v", got)
	}
	ebx, ecx, mtrr := got[0].value, got[1].value, got[2].value
	if apicID, count := ebx>>24, (ebx>>16)&0xff; apicID != 0 || count != 2 {
		t.Errorf("CPUID.1:EBX = %#x: APIC id %d, %d logical CPUs; want 0 and 2", ebx, apicID, count)
	}
	if ecx&(1<<31) == 0 {
		t.Errorf("CPUID.1:ECX = %#x: hypervisor bit clear", ecx)
	}
	if mtrr != 0x806 {
		t.Errorf("IA32_MTRR_DEF_TYPE = %#x, want 0x806 (enabled, write-back)", mtrr)
	}
}

func TestRunStopsASpinningGuestOnCancel(t *testing.T) {
	m := newMachine(t, spinGuest)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Run(ctx, func(int, kvm.Exit) error { return errors.New("no exit expected") })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want context.DeadlineExceeded", err)
	}
	t.Logf("stopped %v after the deadline", time.Since(start)-200*time.Millisecond)
}

func TestTripleFaultEndsRunWithErrShutdown(t *testing.T) {
	m := newMachine(t, tripleFaultGuest)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := m.Run(ctx, func(int, kvm.Exit) error { return errors.New("no exit expected") })
	if !errors.Is(err, kvm.ErrShutdown) {
		t.Fatalf("Run = %v, want kvm.ErrShutdown", err)
	}
}

func TestLifecycleIsEnforced(t *testing.T) {
	m := newMachine(t, longModeGuest)
	run(t, m, nil, nil)
	if err := m.Run(context.Background(), nil); !errors.Is(err, ErrState) {
		t.Errorf("second Run = %v, want ErrState", err)
	}
	if err := m.BootLongMode(guestEntry); !errors.Is(err, ErrState) {
		t.Errorf("BootLongMode after Run = %v, want ErrState", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestSIPIWakesAnAP boots vCPU 1 the way Linux does, through INIT and a
// startup IPI from vCPU 0: KVM_RUN on the waiting AP returns EAGAIN when
// the SIPI arrives, which the run loop must take as "enter again".
func TestSIPIWakesAnAP(t *testing.T) {
	const apCode = 0x20000 // SIPI vector 0x20
	m := newMachineN(t, sipiGuest, 2)
	if err := m.Memory().WriteAt(apGuest.code, apCode); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var fromAP []string
	h := func(cpu int, e kvm.Exit) error {
		if e.Reason == kvm.ExitIO && e.Addr == testDonePort {
			return ErrPowerOff
		}
		mu.Lock()
		defer mu.Unlock()
		fromAP = append(fromAP, fmt.Sprintf("cpu %d port %#x value %#x", cpu, e.Addr, e.Data[0]))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := m.Run(ctx, h); err != nil {
		t.Fatalf("Run: %v (exits %v)", err, fromAP)
	}
	if len(fromAP) != 1 || fromAP[0] != "cpu 1 port 0x12 value 0x42" {
		t.Errorf("exits %v, want the AP's one report", fromAP)
	}
}

// TestBootPVHEntersProtectedMode checks the PVH entry state as the guest
// sees it: EBX holds the start info address, CR0 has protection on and
// paging off.
func TestBootPVHEntersProtectedMode(t *testing.T) {
	m, err := New(Config{MemorySize: testRAM, VCPUs: 1})
	if errors.Is(err, kvm.ErrUnavailable) {
		t.Skipf("needs KVM: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Memory().WriteAt(pvhGuest.code, guestEntry); err != nil {
		t.Fatal(err)
	}
	if err := m.BootPVH(guestEntry, 0x6000); err != nil {
		t.Fatal(err)
	}
	got := run(t, m, nil, nil)
	const cr0PE, cr0PG = 1, 1 << 31
	if len(got) != 2 || got[0].addr != 0x10 || got[0].value != 0x6000 || got[1].addr != 0x11 || got[1].value&cr0PE == 0 || got[1].value&cr0PG != 0 {
		t.Errorf("exits %+v, want EBX 0x6000 then a CR0 with PE and without PG", got)
	}
	if err := m.BootPVH(guestEntry, 0x6000); !errors.Is(err, ErrState) {
		t.Errorf("BootPVH after the run = %v, want ErrState", err)
	}
}
