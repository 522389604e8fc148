package builtin

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/virt"
)

// framePair stands in for a tap: a SOCK_SEQPACKET pair carries frames.
// The first end is the test's (the "network"), the second the VM's.
func framePair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, vm := os.NewFile(uintptr(fds[0]), "net"), os.NewFile(uintptr(fds[1]), "tap")
	t.Cleanup(func() { host.Close(); vm.Close() })
	return host, vm
}

// TestNICsReachTheVMM: the taps of a VM's NICs, opened by the shim, reach
// the confined VMM process with its config (it could open none itself),
// in order, and carry frames under its seccomp filter after the shim
// closed its own descriptors.
func TestNICsReachTheVMM(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	net0, tap0 := framePair(t)
	net1, tap1 := framePair(t)
	cfg.NICs = []virt.NIC{
		{ID: "eth0", Tap: tap0, MAC: net.HardwareAddr{2, 0x42, 10, 88, 0, 5}, MTU: 1500},
		{ID: "net1", Tap: tap1, MAC: net.HardwareAddr{2, 0x42, 10, 89, 0, 7}, MTU: 9000},
	}
	v := startFake(t, cfg)
	tap0.Close()
	tap1.Close()
	out, err := debug(t, v, "nets")
	if err != nil || out != "sent 2" {
		t.Fatalf("nets: %q, %v", out, err)
	}
	for _, tc := range []struct {
		f    *os.File
		want string
	}{{net0, "frame from eth0 02:42:0a:58:00:05"}, {net1, "frame from net1 02:42:0a:59:00:07"}} {
		tc.f.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 256)
		n, err := tc.f.Read(b)
		if err != nil || string(b[:n]) != tc.want {
			t.Errorf("read %q, %v; want %q", b[:max(n, 0)], err, tc.want)
		}
	}
}

// TestCheckConfigNICs: a NIC without a tap or with a multicast MAC, more
// NICs than a VM takes, or NICs and slots beyond the VMM's devices, are
// refused before any process starts.
func TestCheckConfigNICs(t *testing.T) {
	good := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	nic := virt.NIC{ID: "eth0", Tap: os.Stdin, MAC: good, MTU: 1500}
	for name, nics := range map[string][]virt.NIC{
		"no tap":        {{ID: "eth0", MAC: good}},
		"multicast MAC": {{ID: "eth0", Tap: os.Stdin, MAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}},
		"short MAC":     {{ID: "eth0", Tap: os.Stdin, MAC: good[:5]}},
		"17 NICs":       make17(nic),
	} {
		cfg := testConfig(t)
		cfg.NICs = nics
		if _, err := checkConfig(cfg); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	cfg := testConfig(t)
	cfg.DiskSlots = MaxDiskSlots
	cfg.NICs = []virt.NIC{nic}
	if _, err := checkConfig(cfg); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "NICs") {
		t.Errorf("NICs beyond the slots: %v", err)
	}
	cfg.DiskSlots = 2
	c, err := checkConfig(cfg)
	if err != nil || len(c.Nets) != 1 || c.Nets[0] != (childNet{ID: "eth0", MAC: "02:00:00:00:00:01"}) {
		t.Errorf("a good NIC: %+v, %v", c, err)
	}
}

func make17(n virt.NIC) []virt.NIC {
	ns := make([]virt.NIC, 17)
	for i := range ns {
		ns[i] = n
	}
	return ns
}
