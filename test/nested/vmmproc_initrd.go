package nested

import (
	"fmt"
	"os"
	"strings"
)

// The VMM-process run (TestNestedVMMProcess): the outer guest runs
// test/nested/vmmproc, which starts VMs through runtime/virt/builtin, one
// confined VMM process each, and checks them from outside.

// Markers the vmmproc run prints.
const (
	vmmprocLine    = "HUSK-VMMPROC: "
	vmmprocVerdict = "HUSK-VMMPROC-VERDICT: "
	vmmprocRC      = "HUSK-VMMPROC-RC: "
	vmmprocAudit   = "HUSK-VMMPROC-AUDIT: "
)

// vmmprocApplets are the busybox applets the two init scripts use beyond
// the harness's.
var vmmprocApplets = []string{"cp", "mkdir", "switch_root", "umount"}

// VMMProcConfig is what the outer guest of a vmmproc run holds.
type VMMProcConfig struct {
	Busybox     []byte
	Kernel      *Kernel
	VMMProc     string // the static vmmproc binary
	InnerInitrd []byte
	Disk        []byte
}

// VMMProcOuterInitrd builds the outer initrd of a vmmproc run. Its init
// loads kvm and moves the whole root onto a tmpfs (pivot_root, which the
// VMM process confines itself with, cannot leave an initramfs, and a real
// host's root is a mounted filesystem), then mounts cgroup v2 with a pod
// cgroup, runs vmmproc, prints any seccomp audit records (from builds
// that log instead of kill) and powers off.
func VMMProcOuterInitrd(c VMMProcConfig) ([]byte, error) {
	a := base(c.Busybox)
	for _, ap := range vmmprocApplets {
		a.Symlink("bin/"+ap, "busybox")
	}
	if err := addModules(a, c.Kernel, OuterModules); err != nil {
		return nil, err
	}
	proc, err := os.ReadFile(c.VMMProc)
	if err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(c.Kernel.Vmlinuz)
	if err != nil {
		return nil, err
	}
	a.File("bin/vmmproc", 0o755, proc)
	a.File("inner/vmlinuz", 0o644, kernel)
	a.File("inner/initrd", 0o644, c.InnerInitrd)
	a.File("inner/disk.img", 0o644, c.Disk)
	a.File("init", 0o755, []byte(fmt.Sprintf(`#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
for m in %s; do insmod /lib/modules/$m.ko || echo "HUSK-OUTER: insmod $m failed"; done
if [ ! -c /dev/kvm ]; then echo "%sFAIL no /dev/kvm in the outer guest"; poweroff -f; fi
echo "%s$(cut -d' ' -f1 /proc/uptime)"
mkdir /newroot
mount -t tmpfs -o size=1200m root /newroot
cp -a /bin /inner /init2 /newroot/
mkdir /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
umount /proc /sys /dev
exec switch_root /newroot /init2
`, strings.Join(OuterModules, " "), vmmprocVerdict, outerKVM)))
	a.File("init2", 0o755, []byte(fmt.Sprintf(`#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory +pids > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/husk-pod
vmmproc /inner/vmlinuz /inner/initrd /inner/disk.img
echo "%s$? uptime $(cut -d' ' -f1 /proc/uptime)"
dmesg | grep 'type=1326' | sed 's/^/%s/'
poweroff -f
`, vmmprocRC, vmmprocAudit)))
	return a.Bytes(), nil
}
