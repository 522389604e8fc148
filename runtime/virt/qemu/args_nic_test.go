package qemu

import (
	"net"
	"os"
	"slices"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/virt"
)

// TestArgsNICs: each NIC is a tap netdev over the descriptor QEMU inherits
// for it, right after the agent channel's, and a virtio-net device with
// the pod's MAC and MTU; the files are passed in the same order.
func TestArgsNICs(t *testing.T) {
	mac0, _ := net.ParseMAC("02:42:0a:58:00:05")
	mac1, _ := net.ParseMAC("02:42:0a:58:00:06")
	cfg := &virt.VMConfig{ID: "pod", Kernel: "/k", Initrd: "/i", VCPUs: 1, MemoryMiB: 128,
		NICs: []virt.NIC{{ID: "eth0", Tap: os.Stdin, MAC: mac0, MTU: 1450}, {ID: "net1", Tap: os.Stderr, MAC: mac1, MTU: 9000}}}
	a := args(cfg, AccelTCG, twoFDChannel{}) // QMP on 3, the channel on 4 and 5
	if got, want := values(a, "-netdev"), []string{"tap,id=net0,fd=6", "tap,id=net1,fd=7"}; !slices.Equal(got, want) {
		t.Errorf("-netdev %q, want %q", got, want)
	}
	var nics []string
	for _, d := range values(a, "-device") {
		if len(d) > 15 && d[:15] == "virtio-net-pci," {
			nics = append(nics, d)
		}
	}
	want := []string{
		"virtio-net-pci,netdev=net0,id=nic0,mac=02:42:0a:58:00:05,host_mtu=1450,romfile=,disable-legacy=on",
		"virtio-net-pci,netdev=net1,id=nic1,mac=02:42:0a:58:00:06,host_mtu=9000,romfile=,disable-legacy=on",
	}
	if !slices.Equal(nics, want) {
		t.Errorf("NIC devices %q, want %q", nics, want)
	}
	if fs := nicFiles(cfg.NICs); len(fs) != 2 || fs[0] != os.Stdin || fs[1] != os.Stderr {
		t.Errorf("NIC files %v", fs)
	}
	if a := args(&virt.VMConfig{ID: "pod", Kernel: "/k", Initrd: "/i", VCPUs: 1, MemoryMiB: 128}, AccelTCG, twoFDChannel{}); slices.Contains(a, "-netdev") {
		t.Errorf("a VM without NICs has a -netdev: %q", a)
	}
}

// TestCheckConfigNICs: a NIC without a tap, with a multicast MAC or an MTU
// out of range, or too many NICs, is refused before QEMU starts.
func TestCheckConfigNICs(t *testing.T) {
	good, _ := net.ParseMAC("02:00:00:00:00:01")
	multi, _ := net.ParseMAC("03:00:00:00:00:01")
	base := virt.VMConfig{ID: "pod", Dir: "/run/x", Kernel: "/k", Initrd: "/i", VCPUs: 1, MemoryMiB: 128}
	for name, nics := range map[string][]virt.NIC{
		"no tap":        {{ID: "eth0", MAC: good, MTU: 1500}},
		"multicast MAC": {{ID: "eth0", Tap: os.Stdin, MAC: multi, MTU: 1500}},
		"short MAC":     {{ID: "eth0", Tap: os.Stdin, MAC: good[:4], MTU: 1500}},
		"MTU 67":        {{ID: "eth0", Tap: os.Stdin, MAC: good, MTU: 67}},
		"17 NICs":       slices.Repeat([]virt.NIC{{ID: "eth0", Tap: os.Stdin, MAC: good, MTU: 1500}}, 17),
	} {
		cfg := base
		cfg.NICs = nics
		if err := checkConfig(&cfg); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	cfg := base
	cfg.NICs = []virt.NIC{{ID: "eth0", Tap: os.Stdin, MAC: good, MTU: 1500}}
	if err := checkConfig(&cfg); err != nil {
		t.Errorf("a good NIC: %v", err)
	}
}
