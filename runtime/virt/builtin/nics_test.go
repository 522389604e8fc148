//go:build !husk_vmmchild

package builtin

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/virt"
	virtionet "github.com/huskrt/husk/vmm/virtio/net"
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

// realTap opens a tap, up, in a network namespace of its own (which lives
// as long as the tap's descriptor).
func realTap(t *testing.T) *os.File {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the new namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, err}
			return
		}
		f, err := virtionet.OpenTap("hktest0")
		if err != nil {
			ch <- result{nil, err}
			return
		}
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			ifr, _ := unix.NewIfreq("hktest0")
			ifr.SetUint16(unix.IFF_UP)
			err = unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
			unix.Close(s)
		}
		if err != nil {
			f.Close()
		}
		ch <- result{f, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("a tap: %v", r.err)
	}
	t.Cleanup(func() { r.f.Close() })
	return r.f
}

// TestNICsReachTheVMM: the taps of a VM's NICs, opened by the shim, reach
// the confined VMM process with its config (it could open none itself),
// in order, pass its check of what it holds (a real tap among them), and
// carry frames under its seccomp filter after the shim closed its own
// descriptors.
func TestNICsReachTheVMM(t *testing.T) {
	needConfinement(t)
	cfg := testConfig(t)
	net0, tap0 := framePair(t)
	net1, tap1 := framePair(t)
	tap2 := realTap(t)
	cfg.NICs = []virt.NIC{
		{ID: "eth0", Tap: tap0, MAC: net.HardwareAddr{2, 0x42, 10, 88, 0, 5}, MTU: 1500},
		{ID: "net1", Tap: tap1, MAC: net.HardwareAddr{2, 0x42, 10, 89, 0, 7}, MTU: 9000},
		{ID: "net2", Tap: tap2, MAC: net.HardwareAddr{2, 0x42, 10, 90, 0, 9}, MTU: 1500},
	}
	v := startFake(t, cfg)
	tap0.Close()
	tap1.Close()
	tap2.Close()
	out, err := debug(t, v, "nets")
	if err != nil || out != "sent 3" {
		t.Fatalf("nets: %q, %v", out, err)
	}
	taps := 0
	for _, kind := range fdKinds(t, v.Pid()) {
		if kind == "/dev/net/tun" {
			taps++
		}
	}
	if taps != 1 {
		t.Errorf("the VMM holds %d tap queues, want 1", taps)
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
