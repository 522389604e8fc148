package qemu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/huskrt/husk/runtime/virt"
)

// Accelerators.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// qmpFD is the QMP socket's descriptor in QEMU; the channel's follow it.
const qmpFD = 3

// sandboxArgs is QEMU's own seccomp filter: no obsolete system calls, no
// setuid and friends, no fork or exec, no scheduler or affinity changes.
const sandboxArgs = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

// args is QEMU's command line for cfg, accelerated by accel (kvm or tcg),
// with its agent channel's devices. The machine is q35 without the
// devices the guest does not need, started paused (-S: the VM's process
// joins its cgroup before the guest touches memory; QMP's cont starts
// it), its console on stdout, its monitor QMP on fd qmpFD. Each disk slot
// is a PCIe root port that AttachDisk plugs a virtio-blk device into.
func args(cfg *virt.VMConfig, accel string, ch channel) []string {
	cpu := "max"
	if accel == AccelKVM {
		cpu = "host"
	}
	a := []string{
		"-name", optValue("husk-" + cfg.ID),
		"-machine", "q35,accel=" + accel + ",smm=off,vmport=off,sata=off,smbus=off,usb=off,graphics=off,i8042=off",
		"-cpu", cpu,
		"-smp", strconv.FormatUint(uint64(cfg.VCPUs), 10),
		"-m", strconv.FormatUint(cfg.MemoryMiB, 10),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-S",
		"-sandbox", sandboxArgs,
		"-chardev", "stdio,id=console,signal=off",
		"-serial", "chardev:console",
		"-chardev", fmt.Sprintf("socket,id=qmp,fd=%d", qmpFD),
		"-mon", "chardev=qmp,mode=control",
		"-kernel", cfg.Kernel,
		"-initrd", cfg.Initrd,
		"-append", strings.Join(cfg.KernelParams, " "),
		"-object", "rng-random,id=rng,filename=/dev/urandom",
		"-device", "virtio-rng-pci,rng=rng,disable-legacy=on",
	}
	for i := 0; i < cfg.DiskSlots; i++ {
		a = append(a, "-device", fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,chassis=%d,io-reserve=0", portID(i), i+1))
	}
	chArgs, chFiles := ch.devices(qmpFD + 1)
	a = append(a, chArgs...)
	return append(a, nicArgs(cfg.NICs, qmpFD+1+len(chFiles))...)
}

// nicArgs are the devices of the VM's NICs, whose taps are QEMU's
// descriptors from firstFD on (after the channel's): each a tap netdev
// over its descriptor (QEMU finds the tap has no vnet header) and a
// virtio-net PCI device with the pod's MAC. No vhost-net: it needs
// /dev/vhost-net, which hosts like this one lack, and under TCG the
// guest, not the copy, is what is slow. No option ROM: the guest boots
// its kernel directly.
func nicArgs(nics []virt.NIC, firstFD int) []string {
	var a []string
	for i, n := range nics {
		a = append(a,
			"-netdev", fmt.Sprintf("tap,id=%s,fd=%d", netdevID(i), firstFD+i),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,id=%s,mac=%s,host_mtu=%d,romfile=,disable-legacy=on",
				netdevID(i), nicID(i), n.MAC, n.MTU))
	}
	return a
}

// nicFiles are the descriptors nicArgs names, in order.
func nicFiles(nics []virt.NIC) []*os.File {
	fs := make([]*os.File, 0, len(nics))
	for _, n := range nics {
		fs = append(fs, n.Tap)
	}
	return fs
}

// netdevID and nicID name NIC i's backend and device.
func netdevID(i int) string { return "net" + strconv.Itoa(i) }
func nicID(i int) string    { return "nic" + strconv.Itoa(i) }

// portID, nodeName and deviceID name slot i's root port, block node and
// virtio-blk device.
func portID(i int) string   { return "slot" + strconv.Itoa(i) }
func nodeName(i int) string { return "disk" + strconv.Itoa(i) }
func deviceID(i int) string { return "blk" + strconv.Itoa(i) }

// fdsetID is slot i's fd set (add-fd): 0 is QEMU's own choice.
func fdsetID(i int) int { return i + 1 }

// optValue escapes a value for QEMU's option syntax, where a comma
// separates options and ",," is a comma.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// randomCID is a guest context id to try: 3 to 2^32-2 (-1 is "any").
func randomCID() uint32 { return firstCID + rand.Uint32N(0xffff_ffff-firstCID) }
