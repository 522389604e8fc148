package machine

import (
	"errors"
	"sync"
	"testing"

	"github.com/huskrt/husk/vmm/kvm"
)

// TestExitCounts: each return from KVM_RUN lands in its kind, and Exits
// sums the vCPUs while they count (run with -race).
func TestExitCounts(t *testing.T) {
	tests := []struct {
		exit kvm.Exit
		err  error
		want Exits
	}{
		{kvm.Exit{Reason: kvm.ExitIO}, nil, Exits{IO: 1}},
		{kvm.Exit{Reason: kvm.ExitMMIO}, nil, Exits{MMIO: 1}},
		{kvm.Exit{Reason: kvm.ExitHLT}, nil, Exits{HLT: 1}},
		{kvm.Exit{Reason: kvm.ExitIntr}, nil, Exits{Interrupted: 1}},
		{kvm.Exit{Reason: kvm.ExitDebug}, nil, Exits{Other: 1}},
		{kvm.Exit{}, kvm.ErrShutdown, Exits{Other: 1}},
		{kvm.Exit{}, errors.New("KVM_RUN: EFAULT"), Exits{Other: 1}},
	}
	for _, tt := range tests {
		m := &Machine{vcpus: []*vcpu{{}}}
		m.vcpus[0].exits.count(tt.exit, tt.err)
		if got := m.Exits(); got != tt.want {
			t.Errorf("%v, %v counted as %+v, want %+v", tt.exit.Reason, tt.err, got, tt.want)
		}
	}

	const vcpus, n = 4, 1000
	m := &Machine{}
	for range vcpus {
		m.vcpus = append(m.vcpus, &vcpu{})
	}
	var wg sync.WaitGroup
	for _, v := range m.vcpus {
		wg.Go(func() {
			for i := range n {
				r := kvm.ExitIO
				if i%2 == 1 {
					r = kvm.ExitMMIO
				}
				v.exits.count(kvm.Exit{Reason: r}, nil)
			}
		})
	}
	for range n {
		m.Exits() // while they count
	}
	wg.Wait()
	if got, want := m.Exits(), (Exits{IO: vcpus * n / 2, MMIO: vcpus * n / 2}); got != want {
		t.Errorf("Exits = %+v, want %+v", got, want)
	}
}
