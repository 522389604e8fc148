package machine

import (
	"context"
	"errors"
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
