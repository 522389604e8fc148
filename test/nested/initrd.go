package nested

import (
	"fmt"
	"os"
	"strings"

	"github.com/huskrt/husk/internal/cpio"
)

// Busybox applets the init scripts use, linked into /bin.
var applets = []string{"sh", "mount", "insmod", "grep", "tee", "cat", "cut", "head", "echo",
	"poweroff", "devmem", "usleep", "sleep", "ls", "dmesg", "uname", "ip", "ping"}

// base returns an archive with busybox and its applets, /dev/console and
// the mount points.
func base(busybox []byte) *cpio.Archive {
	a := cpio.NewArchive()
	a.File("bin/busybox", 0o755, busybox)
	for _, ap := range applets {
		a.Symlink("bin/"+ap, "busybox")
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp"} {
		a.Dir(d)
	}
	a.CharDevice("dev/console", 5, 1)
	return a
}

// addModules copies kernel modules into /lib/modules/<name>.ko.
func addModules(a *cpio.Archive, k *Kernel, names []string) error {
	for _, m := range names {
		b, err := k.Module(m)
		if err != nil {
			return err
		}
		a.File("lib/modules/"+m+".ko", 0o644, b)
	}
	return nil
}

// Markers the scripts print and the test looks for.
const (
	innerInit = "HUSK-INNER: /init reached, uptime "
	innerDisk = "HUSK-INNER: disk says "
	innerRNG  = "HUSK-INNER: hw_random "
	innerCPUs = "HUSK-INNER: online CPUs "
	// innerNetOK: the inner guest pinged the outer VM's end of the tap
	// (virtio-net, husk0 in the outer VM, 10.0.2.1; the guest is 10.0.2.2).
	innerNetOK = "HUSK-INNER: net ping ok"
	// The vsock exchanges: the guest dials the host's echo server on
	// port 5000; the host dials the guest's server on port 6000.
	vsockGuestOK = "HUSK-VSOCK: guest-dial ok echo:hello-from-guest"
	vsockHostOK  = "HUSK-VSOCK: host-dial ok pong:hello-from-host"
	verdictLine  = "HUSK-NESTED-VERDICT: "
	verdictPass  = "PASS"
	outerKVM     = "HUSK-OUTER: /dev/kvm ready, uptime "
	outerVMMDone = "HUSK-OUTER: VMM exit "
)

// InnerModules are what the inner init loads, in dependency order: the
// cloud kernel builds virtio as modules, matched by ACPI id LNRO0005.
var InnerModules = []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio-rng",
	"failover", "net_failover", "virtio_net",
	"vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport"}

// OuterModules give the outer guest /dev/kvm on QEMU's emulated AMD CPU.
// tun is for the VMM's tap.
var OuterModules = []string{"irqbypass", "kvm", "kvm-amd", "tun"}

// InnerInitrd builds the inner guest's initrd. Its init marks the boot
// timer at once (so the VMM measures boot to /init), reports its uptime,
// loads the virtio modules, reads the first len(diskMagic) bytes of
// /dev/vda, exchanges a line with the host over vsock in each direction
// (vsockprobe) and powers off.
func InnerInitrd(busybox, probe []byte, k *Kernel, diskMagic string) ([]byte, error) {
	a := base(busybox)
	if err := addModules(a, k, InnerModules); err != nil {
		return nil, err
	}
	a.File("bin/vsockprobe", 0o755, probe)
	script := fmt.Sprintf(`#!/bin/sh
export PATH=/bin
mount -t devtmpfs dev /dev
devmem %#x 8 123
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "%s$(cut -d' ' -f1 /proc/uptime)"
if grep -q %s /proc/cmdline; then poweroff -f; fi
for m in %s; do insmod /lib/modules/$m.ko || echo "HUSK-INNER: insmod $m failed"; done
i=0
while [ ! -e /dev/vda ] && [ $i -lt 100 ]; do usleep 100000; i=$((i+1)); done
echo "%s$(head -c %d /dev/vda)"
echo "%s$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "%s$(cat /sys/devices/system/cpu/online)"
ip link set eth0 up && ip addr add 10.0.2.2/24 dev eth0
i=0
while [ $i -lt 30 ]; do
  if ping -c 1 -W 1 10.0.2.1 > /dev/null 2>&1; then echo "%s"; break; fi
  i=$((i+1))
done
[ $i -lt 30 ] || { echo "HUSK-INNER: net ping failed"; ip addr; }
timeout 240 vsockprobe guest-serve 6000 > /tmp/serve.log 2>&1 &
serve=$!
timeout 240 vsockprobe guest-dial 5000 hello-from-guest
wait $serve
cat /tmp/serve.log
poweroff -f
`, bootTimerAddr, innerInit, P9Cmdline, strings.Join(InnerModules, " "), innerDisk, len(diskMagic), innerRNG, innerCPUs, innerNetOK)
	a.File("init", 0o755, []byte(script))
	return a.Bytes(), nil
}

// bootTimerAddr is vmm.BootTimerAddr (the harness does not import the
// VMM: it runs it).
const bootTimerAddr = 0xc000_0000

// OuterConfig is what the outer guest runs.
type OuterConfig struct {
	Busybox     []byte
	Probe       []byte // vsockprobe, static
	Kernel      *Kernel
	VMM         string // path of the static VMM binary
	InnerInitrd []byte
	Disk        []byte
	DiskMagic   string
	InnerArgs   string // extra husk-vmm-test flags
	InnerAppend string // the inner kernel command line
	// P9, after the verdict, boots the inner kernel and initrd once more
	// with each of husk's VMM and QEMU microvm (QEMU, with its libraries
	// and firmware, goes into the initrd) and prints boot-to-/init times
	// (see p9Script).
	P9   bool
	QEMU string // qemu-system-x86_64 for P9
	// P9Runs is how many times P9 boots with each VMM (at least once);
	// P9Vmlinux, when set, is the host path of the inner kernel's
	// uncompressed ELF image, for the tuned QEMU's PVH boot, and P9Tuned
	// the tuned QEMUs' machine and accelerator options by name (default:
	// "qemu-tuned", P9TunedQEMU).
	P9Runs    int
	P9Vmlinux string
	P9Tuned   map[string]string
}

// OuterInitrd builds the outer initrd: busybox, the kvm modules, the VMM,
// and the inner kernel, initrd and disk, with an init that runs the VMM
// and prints the verdict.
func OuterInitrd(c OuterConfig) ([]byte, error) {
	a := base(c.Busybox)
	if err := addModules(a, c.Kernel, OuterModules); err != nil {
		return nil, err
	}
	vmm, err := os.ReadFile(c.VMM)
	if err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(c.Kernel.Vmlinuz)
	if err != nil {
		return nil, err
	}
	a.File("bin/husk-vmm", 0o755, vmm)
	a.File("bin/vsockprobe", 0o755, c.Probe)
	a.File("inner/vmlinuz", 0o644, kernel)
	a.File("inner/initrd", 0o644, c.InnerInitrd)
	a.File("inner/disk.img", 0o644, c.Disk)
	p9 := ""
	if c.P9 {
		if err := addQEMU(a, c.QEMU); err != nil {
			return nil, err
		}
		if c.P9Vmlinux != "" {
			elf, err := os.ReadFile(c.P9Vmlinux)
			if err != nil {
				return nil, err
			}
			a.File("inner/vmlinux", 0o644, elf)
		}
		tuned := c.P9Tuned
		if c.P9Vmlinux == "" {
			tuned = nil
		} else if tuned == nil {
			tuned = map[string]string{"qemu-tuned": P9TunedQEMU}
		}
		p9 = p9Script(c.InnerAppend, c.P9Runs, tuned)
	}
	script := fmt.Sprintf(`#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
for m in %s; do insmod /lib/modules/$m.ko || echo "HUSK-OUTER: insmod $m failed"; done
if [ ! -c /dev/kvm ]; then echo "%sFAIL no /dev/kvm in the outer guest"; poweroff -f; fi
echo "%s$(cut -d' ' -f1 /proc/uptime)"
vsockprobe host-echo /tmp/v.sock_5000 > /tmp/echo.log 2>&1 &
vsockprobe host-dial /tmp/v.sock 6000 hello-from-host > /tmp/dial.log 2>&1 &
# The VMM creates the tap husk0; give it the outer end's address once it exists.
( i=0; while [ ! -e /sys/class/net/husk0 ] && [ $i -lt 1200 ]; do usleep 50000; i=$((i+1)); done
  ip link set husk0 up && ip addr add 10.0.2.1/24 dev husk0 ) &
( husk-vmm --kernel /inner/vmlinuz --initrd /inner/initrd --disk /inner/disk.img,ro,id=husk-nested --vsock 3,/tmp/v.sock --net husk0 --append '%s' %s 2>&1
  echo "rc=$?" > /tmp/rc ) | tee /tmp/inner.log
rc=$(cat /tmp/rc)
echo "%s$rc, uptime $(cut -d' ' -f1 /proc/uptime)"
cat /tmp/echo.log /tmp/dial.log
fail=""
[ "$rc" = rc=0 ] || fail="$fail vmm-$rc"
grep -q "%s" /tmp/inner.log || fail="$fail no-init"
grep -q "%s%s" /tmp/inner.log || fail="$fail disk"
grep -q "%s" /tmp/inner.log || fail="$fail vsock-guest-to-host"
grep -q "%s" /tmp/dial.log || fail="$fail vsock-host-to-guest"
grep -q "%s" /tmp/inner.log || fail="$fail net"
if [ -z "$fail" ]; then echo "%s%s"; else echo "%sFAIL$fail"; fi
%s
poweroff -f
`, strings.Join(OuterModules, " "), verdictLine, outerKVM, c.InnerAppend, c.InnerArgs, outerVMMDone,
		innerInit, innerDisk, c.DiskMagic, vsockGuestOK, vsockHostOK, innerNetOK, verdictLine, verdictPass, verdictLine, p9)
	a.File("init", 0o755, []byte(script))
	return a.Bytes(), nil
}
