package nested

import (
	"fmt"
	"os"
	"strings"

	"github.com/huskrt/husk/internal/cpio"
)

// Markers of the agent run (printed by the outer init and agentdriver).
const (
	agentVerdict = "HUSK-AGENT-VERDICT: "
	// AgentMarker is on the inner kernel's command line only: a container
	// that prints it ran in the inner guest.
	AgentMarker = "husk.nested-agent"
)

// AgentConfig is what the outer guest of the agent run holds.
type AgentConfig struct {
	Busybox []byte
	Kernel  *Kernel
	Driver  string // static agentdriver, with husk's VMM in it
	// GuestKernel and GuestInitrd are the guest image (make guest): the
	// inner VM's /init is husk-agent.
	GuestKernel, GuestInitrd string
	// Rootfs is an EROFS image of the containers' root filesystem.
	Rootfs string
}

// AgentOuterInitrd builds the outer initrd of the agent run: the outer
// init runs agentdriver, which boots the guest image with husk's VMM (the
// rootfs image as a read-only disk, serial "rootfs", two empty disk slots,
// hybrid vsock at /tmp/v.sock), drives the agent and prints the verdict.
func AgentOuterInitrd(c AgentConfig) ([]byte, error) {
	a := base(c.Busybox)
	if err := addModules(a, c.Kernel, OuterModules); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{
		{c.Driver, "bin/agentdriver", 0o755},
		{c.GuestKernel, "inner/vmlinuz", 0o644},
		{c.GuestInitrd, "inner/initrd", 0o644},
		{c.Rootfs, "inner/rootfs.erofs", 0o644},
	} {
		if err := addFile(a, f.src, f.dst, f.mode); err != nil {
			return nil, err
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
for m in %s; do insmod /lib/modules/$m.ko || echo "HUSK-OUTER: insmod $m failed"; done
if [ ! -c /dev/kvm ]; then echo "%sFAIL no /dev/kvm in the outer guest"; poweroff -f; fi
echo "%s$(cut -d' ' -f1 /proc/uptime)"
agentdriver --marker %s --append 'console=ttyS0 reboot=k panic=-1 quiet %s' 2>/tmp/vm.log
echo "HUSK-OUTER: the VM's console and the VMM's log:"
cat /tmp/vm.log
poweroff -f
`, strings.Join(OuterModules, " "), agentVerdict, outerKVM, AgentMarker, AgentMarker)
	a.File("init", 0o755, []byte(script))
	return a.Bytes(), nil
}

func addFile(a *cpio.Archive, src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	a.File(dst, mode, b)
	return nil
}
