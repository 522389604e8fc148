package vmm

import (
	"context"
	"errors"
	"testing"

	"github.com/huskrt/husk/vmm/kvm"
)

// TestProbeSpeed: the probe guest runs to its end in a time that makes
// sense.
func TestProbeSpeed(t *testing.T) {
	per, err := ProbeSpeed(context.Background())
	if errors.Is(err, kvm.ErrUnavailable) {
		t.Skipf("needs KVM: %v", err)
	}
	if err != nil || per <= 0 {
		t.Fatalf("probe: %v a guest instruction, %v", per, err)
	}
	t.Logf("%v a guest instruction (slow above %v)", per, SlowInstruction)
}
