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
	VMM     string // static husk-vmm-test
	Driver  string // static agentdriver
	// GuestKernel and GuestInitrd are the guest image (make guest): the
	// inner VM's /init is husk-agent.
	GuestKernel, GuestInitrd string
	// Rootfs is an EROFS image of the containers' root filesystem.
	Rootfs string
}

// AgentOuterInitrd builds the outer initrd of the agent run: the outer
// init starts husk's VMM on the guest image with the rootfs image as a
// read-only disk (serial "rootfs") and hybrid vsock at /tmp/v.sock, then
// runs agentdriver, which drives the agent and prints the verdict.
func AgentOuterInitrd(c AgentConfig) ([]byte, error) {
	a := base(c.Busybox)
	if err := addModules(a, c.Kernel, OuterModules); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{
		{c.VMM, "bin/husk-vmm", 0o755},
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
husk-vmm --kernel /inner/vmlinuz --initrd /inner/initrd --disk /inner/rootfs.erofs,ro,id=rootfs --vsock 3,/tmp/v.sock --mem 512M --cpus 2 --rng --timeout 300s --append 'console=ttyS0 reboot=k panic=-1 quiet %s' > /tmp/vm.log 2>&1 &
vmm=$!
agentdriver --uds /tmp/v.sock --disk rootfs --marker %s
kill $vmm 2>/dev/null; wait $vmm
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
