package nested

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Runs whose outer guest starts VMs as the shim does, through
// runtime/virt/builtin's confined VMM process: the vmmproc run
// (TestNestedVMMProcess: test/nested/vmmproc checks each VMM process from
// outside) and the vmmem run (the bench's P10: test/nested/vmmem measures
// a VM's memory beside QEMU microvm's).

// Markers the vmmproc run prints.
const (
	vmmprocLine    = "HUSK-VMMPROC: "
	vmmprocVerdict = "HUSK-VMMPROC-VERDICT: "
	vmmprocRC      = "HUSK-VMMPROC-RC: "
	vmmprocAudit   = "HUSK-VMMPROC-AUDIT: "
)

// confinedApplets are the busybox applets the two init scripts use beyond
// the harness's.
var confinedApplets = []string{"cp", "mkdir", "switch_root", "umount"}

// confinedOuter is an outer guest that runs one static program the way a
// shim runs VMM processes.
type confinedOuter struct {
	Busybox []byte
	Kernel  *Kernel
	Modules []string // loaded after OuterModules
	Program string   // host path of the static program; /bin/<its name> in the guest
	Args    string   // its arguments (shell words)
	// Files are more files, by their path in the guest (no leading /);
	// those under usr/bin/ and bin/ are executable.
	Files map[string][]byte
	// QEMU, when set, is the host's qemu-system-x86_64, added with its
	// libraries and microvm's firmware.
	QEMU string
	// Fail starts the line printed when the outer guest has no /dev/kvm;
	// RC the line with the program's exit status; Audit each seccomp
	// audit record (from builds that log instead of kill).
	Fail, RC, Audit string
}

// initrd builds the outer initrd. Its init loads kvm and the modules, and
// moves the whole root onto a tmpfs (pivot_root, which the VMM process
// confines itself with, cannot leave an initramfs, and a real host's root
// is a mounted filesystem); then it mounts cgroup v2 with a pod cgroup,
// /husk-pod, runs the program, prints its status and any seccomp audit
// records, and powers off.
func (c confinedOuter) initrd() ([]byte, error) {
	a := base(c.Busybox)
	for _, ap := range confinedApplets {
		a.Symlink("bin/"+ap, "busybox")
	}
	modules := append(append([]string{}, OuterModules...), c.Modules...)
	if err := addModules(a, c.Kernel, modules); err != nil {
		return nil, err
	}
	prog, err := os.ReadFile(c.Program)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(c.Program)
	a.File("bin/"+name, 0o755, prog)
	paths := make([]string, 0, len(c.Files))
	for p := range c.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "usr/bin/") || strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		a.File(p, mode, c.Files[p])
	}
	if c.QEMU != "" {
		if err := addQEMU(a, c.QEMU); err != nil {
			return nil, err
		}
	}
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
for d in /*; do case $d in /proc|/sys|/dev|/newroot) ;; *) cp -a $d /newroot/ ;; esac; done
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
umount /proc /sys /dev
exec switch_root /newroot /init2
`, strings.Join(modules, " "), c.Fail, outerKVM)))
	a.File("init2", 0o755, []byte(fmt.Sprintf(`#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory +pids > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/husk-pod
%s %s
echo "%s$? uptime $(cut -d' ' -f1 /proc/uptime)"
dmesg | grep 'type=1326' | sed 's/^/%s/'
poweroff -f
`, name, c.Args, c.RC, c.Audit)))
	return a.Bytes(), nil
}

// VMMProcConfig is what the outer guest of a vmmproc run holds.
type VMMProcConfig struct {
	Busybox     []byte
	Kernel      *Kernel
	VMMProc     string // the static vmmproc binary
	InnerInitrd []byte
	Disk        []byte
}

// VMMProcOuterInitrd builds the outer initrd of a vmmproc run.
func VMMProcOuterInitrd(c VMMProcConfig) ([]byte, error) {
	kernel, err := os.ReadFile(c.Kernel.Vmlinuz)
	if err != nil {
		return nil, err
	}
	return confinedOuter{
		Busybox: c.Busybox, Kernel: c.Kernel, Program: c.VMMProc,
		Args: "/inner/vmlinuz /inner/initrd /inner/disk.img",
		Files: map[string][]byte{
			"inner/vmlinuz": kernel, "inner/initrd": c.InnerInitrd, "inner/disk.img": c.Disk,
		},
		Fail: vmmprocVerdict, RC: vmmprocRC, Audit: vmmprocAudit,
	}.initrd()
}
