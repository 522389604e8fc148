package nested

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
)

// The containerd run: a private containerd, with husk's shim, inside the
// outer guest, driven by ctr. It is the end-to-end proof for husk's
// handlers that need what this machine lacks (the VM handler needs a real
// /dev/kvm): the outer guest has one, and everything from containerd down
// is the production path (ctr → containerd → containerd-shim-husk-v2 →
// handler).
//
// What the outer initrd holds (ContainerdOuterInitrd; about 100 MB,
// uncompressed, without a guest image):
//
//   - busybox (1.2 MB, static) with every applet linked at boot
//     (busybox --install), so scenarios can use any of them;
//   - the outer kernel's modules: OuterModules (kvm, kvm-amd, their
//     irqbypass, tun: 3.2 MB) and overlay (0.35 MB), for containerd's
//     default overlayfs snapshotter;
//   - containerd (40 MB) and ctr (23 MB) from <repo>/.tools/bin, stripped
//     of debug information (−27 MB), with the libraries ldd lists (glibc,
//     2.2 MB): they are built with cgo;
//   - containerd-shim-husk-v2 (25 MB), built static by BuildShim;
//   - mkfs.erofs and its libraries (1 MB): the VM handler makes EROFS
//     images of root filesystems with it;
//   - a busybox OCI image tarball (devenv.BusyboxImage, 1 MB), imported
//     at boot, since the outer guest has no registry;
//   - /etc/containerd/config.toml, /etc/husk/config.toml, the harness's
//     scripts under /etc/husk-nested;
//   - optionally the guest image (make guest: about 14 MB of kernel and
//     the initrd) under /var/cache/husk/guest, the VM handler's default
//     guest_image.
//
// Loading it costs a few seconds of TCG, so QEMU gets ContainerdMemMiB.
//
// Why overlayfs and not containerd's native snapshotter: overlay is one
// small module, native would copy every layer per container; overlayfs is
// what production nodes use, and its read-only lower layers are what the
// VM handler caches EROFS images of (runtime/virt layersKey), so a VM
// scenario exercises that path. /var/lib/containerd is a tmpfs of its own:
// tmpfs takes overlay's trusted.* xattrs.
//
// The outer init (containerdInit) first makes the root a mount with a
// parent: it bind-mounts the initramfs onto /newroot, moves that onto /
// and chroots into it, as switch_root does but without copying. Without
// it "/" is the kernel's rootfs, where pivot_root(2) fails with EINVAL,
// and pivot_root is what libcontainer enters a container's root with and
// what husk's VMM jail confines itself with (runtime/virt/builtin
// confine.go). Then containerdStage2 mounts proc, sysfs, devtmpfs, devpts,
// /dev/shm, /run, /tmp, cgroup2 at /sys/fs/cgroup (every controller
// enabled in the root's subtree_control), loads the modules, starts
// containerd (socket /run/containerd/containerd.sock, CRI disabled unless
// ContainerdConfig.CRI: containerd_cri.go),
// waits for `ctr version`, imports the image, and runs the scenario.
//
// A scenario is a shell snippet (ContainerdConfig.Scenario) run by
// busybox sh in the outer guest, with ctr's namespace and address set in
// the environment, and:
//
//	$RUNTIME  io.containerd.husk.v2
//	$IMAGE    the busybox image's name (ContainerdImageRef)
//	fail WHY...             records a failure and goes on
//	expect WHAT GOT WANT    "ok: WHAT" when GOT = WANT, else fail
//	note TEXT...            prints TEXT as a line of the run
//	up, since T             the uptime; seconds since uptime T
//	wait_status ID STATUS   waits (30 s) for task ID's STATUS
//	wait_stopped ID         wait_status ID STOPPED
//	vmm_pids                the live VMM processes (husk-vmm vmm ID)
//	shim_pids [ID]          the serving shims (of -id ID)
//	wait_no_vmm WHAT        waits (10 s) for no VMM process, expect-style
//	check_clean             fails for tasks, containers, shims, VMM
//	                        processes, task mounts, husk state, per-
//	                        container disk images or cgroups left behind
//	ptyrun CMD...           CMD on a terminal of its own (ContainerdConfig.Ptyrun)
//
// The run passes when the scenario called no fail and exited 0; the
// outer init prints "HUSK-CTR-VERDICT: PASS", or "FAIL <the failures>"
// followed by the end of containerd's log (the shim logs there too), and
// powers off. A watchdog prints a FAIL verdict and powers off when the
// scenario outlives ScenarioTimeout. RunContainerd boots it and returns
// the console; TestNestedContainerd is the example. A VM scenario is the
// same with `--annotation io.husk.handler=virt` on ctr run and the guest
// image in GuestKernel, GuestInitrd and GuestManifest; the guests' kernel
// command line holds ContainerdGuestMarker, and the end of the run lists
// the shim's "VM ready" lines (each VM's boot to its agent's answer).

// Markers of the containerd run.
const (
	ctrVerdict = "HUSK-CTR-VERDICT: "
	ctrMarker  = "HUSK-CTR: "
)

// ContainerdImageRef is the name the busybox image is imported as.
const ContainerdImageRef = "husk.local/busybox:latest"

// ContainerdNamespace is the containerd namespace ctr uses in the outer
// guest (CONTAINERD_NAMESPACE).
const ContainerdNamespace = "husk-nested"

// ContainerdMemMiB is the outer guest's memory for a containerd run: the
// ~100 MB initrd is in memory twice while the kernel unpacks it, then the
// root filesystem, containerd's tmpfs and the processes (and VMs) share it.
const ContainerdMemMiB = 3072

// ContainerdModules are the outer kernel's modules a containerd run loads,
// in dependency order: OuterModules for /dev/kvm and taps, then overlay.
var ContainerdModules = append(append([]string{}, OuterModules...), "overlay")

// DefaultHuskConfig is /etc/husk/config.toml in the outer guest unless
// ContainerdConfig.HuskConfig replaces it: the defaults, spelled out where
// the harness relies on them (the VM handler finds the guest image at
// /var/cache/husk/guest).
const DefaultHuskConfig = `[runtime]
default_handler = "linux"
state_dir = "/run/husk"

[log]
level = "info"

[virt]
guest_image = "/var/cache/husk/guest"
rootfs_cache = "/var/cache/husk/rootfs"
kernel_params = ["` + ContainerdGuestMarker + `"]
# The inner guests run under KVM inside an outer guest that QEMU emulates
# (TCG): on a loaded two-core CI machine one agent call (an exec's
# StartProcess) took longer than the default 10 s. The scenario tests what
# works, not how fast; a call that hangs still fails.
agent_timeout = "60s"
`

// ContainerdGuestMarker is on the command line of the guests the VM
// handler boots (DefaultHuskConfig) and of no other kernel: a container
// that reads it in /proc/cmdline runs in a VM.
const ContainerdGuestMarker = "husk.nested-ctr"

// DefaultScenarioTimeout bounds a scenario when ContainerdConfig does not
// say: with the outer guest's boot, containerd's start and the image
// import (about a minute of TCG), it stays under the tests' QEMU timeout.
const DefaultScenarioTimeout = 240 * time.Second

// ContainerdConfig is what the outer guest of a containerd run holds.
type ContainerdConfig struct {
	Busybox []byte
	Kernel  *Kernel
	Tools   *ContainerdTools
	Shim    string // static containerd-shim-husk-v2 (BuildShim)
	// Ptyrun, when set, is the static test/nested/ptyrun, for scenarios
	// that give ctr a terminal (ctr run -t).
	Ptyrun string
	Image  string // the busybox OCI image tarball (devenv.BusyboxImage, named ContainerdImageRef)
	// HuskConfig is /etc/husk/config.toml; empty means DefaultHuskConfig.
	HuskConfig string
	// GuestKernel, GuestInitrd and GuestManifest, when set, are the guest
	// image (make guest; internal/guestimage) the VM handler boots; they go
	// to /var/cache/husk/guest.
	GuestKernel, GuestInitrd, GuestManifest string
	// Scenario is the shell snippet to run (see the comment above).
	Scenario string
	// ScenarioTimeout bounds the scenario; 0 means DefaultScenarioTimeout.
	ScenarioTimeout time.Duration
	// QEMU, when set, is the host's qemu-system-x86_64: the outer guest
	// gets it at /usr/bin with its libraries and the q35 firmware, and the
	// vhost-vsock modules, so that the VM handler's qemu backend runs there.
	QEMU string
	// Files are more files, by their path in the guest (no leading /).
	Files map[string][]byte
	// Modules are more of the outer kernel's modules, loaded at boot
	// after ContainerdModules, in their order.
	Modules []string
	// CRI, when set, turns on containerd's CRI plugin (containerd_cri.go).
	CRI *CRIConfig
}

// ContainerdOuterInitrd builds the outer initrd of a containerd run.
func ContainerdOuterInitrd(c ContainerdConfig) ([]byte, error) {
	if c.Kernel == nil || c.Tools == nil || c.Shim == "" || c.Image == "" || len(c.Busybox) == 0 {
		return nil, fmt.Errorf("nested: ContainerdConfig needs Busybox, Kernel, Tools, Shim and Image")
	}
	a := base(c.Busybox)
	modules := ContainerdModules
	if c.QEMU != "" {
		modules = append(append([]string{}, modules...), vhostModules...)
		if err := addQEMU(a, c.QEMU); err != nil {
			return nil, err
		}
		if err := addFile(a, c.QEMU, "usr/bin/qemu-system-x86_64", 0o755); err != nil {
			return nil, err
		}
		for dst, src := range q35Firmware {
			if err := addFile(a, src, dst, 0o644); err != nil {
				return nil, fmt.Errorf("%w: QEMU q35 firmware: %v", ErrMissing, err)
			}
		}
	}
	if c.CRI != nil {
		modules = append(append([]string{}, modules...), criModules...)
		if err := addCRI(a, c.CRI); err != nil {
			return nil, err
		}
	}
	for _, m := range c.Modules {
		if !slices.Contains(modules, m) {
			modules = append(append([]string{}, modules...), m)
		}
	}
	if err := addModules(a, c.Kernel, modules); err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(maps.Keys(c.Files)) {
		a.File(p, 0o644, c.Files[p])
	}
	for _, x := range []struct{ src, dst string }{
		{c.Tools.Containerd, "bin/containerd"},
		{c.Tools.Ctr, "bin/ctr"},
		{c.Shim, "bin/containerd-shim-husk-v2"},
		{filepath.Join(filepath.Dir(c.Shim), vmmBinary), "bin/" + vmmBinary}, // BuildShim's
		{c.Tools.MkfsErofs, "bin/mkfs.erofs"},
	} {
		if err := addExecutable(a, x.src, x.dst); err != nil {
			return nil, err
		}
	}
	if c.Ptyrun != "" {
		if err := addExecutable(a, c.Ptyrun, "bin/ptyrun"); err != nil {
			return nil, err
		}
	}
	if err := addFile(a, c.Image, "images/busybox.tar", 0o644); err != nil {
		return nil, err
	}
	guest := "var/cache/husk/guest"
	for _, g := range []struct{ src, name string }{
		{c.GuestKernel, guestimage.KernelFile},
		{c.GuestInitrd, guestimage.InitrdFile},
		{c.GuestManifest, guestimage.ManifestFile},
	} {
		if g.src == "" {
			continue
		}
		if err := addFile(a, g.src, path.Join(guest, g.name), 0o644); err != nil {
			return nil, err
		}
	}
	husk := c.HuskConfig
	if husk == "" {
		husk = DefaultHuskConfig
	}
	timeout := c.ScenarioTimeout
	if timeout <= 0 {
		timeout = DefaultScenarioTimeout
	}
	for _, d := range []string{"newroot", "run", "var/lib/containerd", "var/cache/husk/rootfs"} {
		a.Dir(d)
	}
	toml, lib, prepare := containerdTOML, scenarioLib, ""
	if c.CRI != nil {
		toml = criContainerdTOML(c.CRI)
		lib += criLib
		prepare = criPrepare
	}
	a.File("etc/containerd/config.toml", 0o644, []byte(toml))
	a.File("etc/husk/config.toml", 0o644, []byte(husk))
	a.File("etc/husk-nested/lib.sh", 0o644, []byte(lib))
	a.File("etc/husk-nested/scenario.sh", 0o644, []byte(c.Scenario))
	a.File("etc/husk-nested/stage2", 0o755, []byte(containerdStage2(int(timeout.Seconds()), modules, prepare)))
	a.File("init", 0o755, []byte(containerdInit))
	return a.Bytes(), nil
}

// containerdTOML is containerd's configuration in the outer guest: version
// 3 (containerd 2.x), its standard paths (the outer guest is a machine of
// its own), no imports, and the plugins test/devenv disables turned off:
// CRI (ctr drives it), snapshotters other than overlayfs and native,
// tracing, NRI, and the host-global opt and image-verifier plugins.
const containerdTOML = `version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
imports = []
disabled_plugins = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.cri.v1.images',
  'io.containerd.cri.v1.runtime',
  'io.containerd.podsandbox.controller.v1.podsandbox',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.differ.v1.erofs',
  'io.containerd.mount-handler.v1.erofs',
  'io.containerd.internal.v1.tracing',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.nri.v1.nri',
  'io.containerd.internal.v1.opt',
  'io.containerd.image-verifier.v1.bindir',
]

[grpc]
  address = '/run/containerd/containerd.sock'

[ttrpc]
  address = '/run/containerd/containerd.sock.ttrpc'

[debug]
  level = 'info'
`

// containerdInit is the outer guest's /init: it makes "/" a bind mount of
// the initramfs (a mount with a parent, where pivot_root works) and runs
// stage 2 chrooted there, still as PID 1.
const containerdInit = `#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -o bind / /newroot
cd /newroot
mount -o move . /
exec chroot . /etc/husk-nested/stage2
`

// scenarioLib is sourced before the scenario (see the comment above).
const scenarioLib = `fail() { echo "` + ctrMarker + `FAIL: $*"; echo "$*" >> /tmp/husk-fails; }
expect() {
  if [ "$2" = "$3" ]; then echo "` + ctrMarker + `ok: $1"; else fail "$1: got '$2', want '$3'"; fi
}
note() { echo "` + ctrMarker + `$*"; }
since() { awk "BEGIN { printf \"%.2f\", $(up) - $1 }"; }
wait_status() {
  i=0
  until ctr task ls | grep -q "^$1 .*$2"; do
    i=$((i+1)); [ $i -lt 150 ] || { fail "task $1 not $2 after 30s: $(ctr task ls | grep "^$1 ")"; return 1; }
    usleep 200000
  done
}
wait_stopped() { wait_status "$1" STOPPED; }
cmdlines() {
  for p in /proc/[0-9]*; do
    c=$(tr '\0' ' ' < $p/cmdline 2>/dev/null)
    [ -n "$c" ] && echo "${p#/proc/} $c"
  done
}
# (The [c] and [h] keep each grep from matching its own command line.)
husk_procs() { cmdlines | grep -e '[c]ontainerd-shim-husk-v2' -e '^[0-9]* [h]usk-vmm '; }
vmm_pids() { cmdlines | grep '^[0-9]* [h]usk-vmm vmm ' | cut -d' ' -f1; }
shim_pids() { cmdlines | grep "[c]ontainerd-shim-husk-v2 .*-id ${1:-[^ ]*} " | grep -v -e ' start $' -e ' delete $' | cut -d' ' -f1; }
wait_no_vmm() {
  i=0
  while [ -n "$(vmm_pids)" ] && [ $i -lt 50 ]; do usleep 200000; i=$((i+1)); done
  expect "$1" "$(vmm_pids)" ""
}
check_clean() {
  t=$(ctr task ls -q); [ -z "$t" ] || fail "tasks left: $t"
  c=$(ctr containers ls -q); [ -z "$c" ] || fail "containers left: $c"
  i=0
  while [ -n "$(husk_procs)" ] && [ $i -lt 50 ]; do usleep 200000; i=$((i+1)); done
  p=$(husk_procs); [ -z "$p" ] || fail "husk processes left: $p"
  m=$(grep -e io.containerd.runtime.v2.task -e /run/husk/ -e /var/cache/husk /proc/mounts); [ -z "$m" ] || fail "mounts left: $m"
  s=$(find /run/husk -mindepth 2 2>/dev/null); [ -z "$s" ] || fail "husk state left: $s"
  d=$(find /var/cache/husk/rootfs -mindepth 1 2>/dev/null | grep -Ev '/[0-9a-f]{64}[.]erofs$'); [ -z "$d" ] || fail "disk images left: $d"
  g=$(find /sys/fs/cgroup/$CONTAINERD_NAMESPACE -mindepth 1 -type d 2>/dev/null); [ -z "$g" ] || fail "cgroups left: $g"
  [ -n "$t$c$p$m$s$d$g" ] || echo "` + ctrMarker + `ok: nothing left (tasks, containers, shims, VMM processes, mounts, state, disk images, cgroups)"
}
`

// containerdStage2 is the outer init after the chroot, PID 1: mounts,
// modules, containerd, the image, prepare (a snippet, the CRI's), the
// scenario under a watchdog of timeoutSec, the verdict; in the background,
// the uptime lines clockWatch reads.
func containerdStage2(timeoutSec int, modules []string, prepare string) string {
	return fmt.Sprintf(`#!/bin/sh
export PATH=/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export CONTAINERD_NAMESPACE=%[1]s RUNTIME=io.containerd.husk.v2 IMAGE=%[2]s
M="%[3]s"
V="%[4]s"
up() { cut -d' ' -f1 /proc/uptime; }
logs() { echo "${M}containerd's log (end):"; tail -n 80 /tmp/containerd.log; }
verdict_fail() { echo "${V}FAIL $*"; logs; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0711 containerd /var/lib/containerd
mount -t cgroup2 cgroup2 /sys/fs/cgroup || verdict_fail "no cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "${M}controller $c not enabled"; done
for m in %[5]s; do insmod /lib/modules/$m.ko || echo "${M}insmod $m failed"; done
[ -c /dev/kvm ] && echo "${M}/dev/kvm ready" || echo "${M}no /dev/kvm"
ip link set lo up
hostname husk-nested
echo "${M}outer guest ready, uptime $(up)"
%[8]scontainerd --config /etc/containerd/config.toml > /tmp/containerd.log 2>&1 &
i=0
until ctr version > /dev/null 2>&1; do
  i=$((i+1)); [ $i -lt 600 ] || verdict_fail "containerd did not answer in 120 s"
  usleep 200000
done
echo "${M}containerd ready, uptime $(up)"
ctr images import --platform linux/amd64 /images/busybox.tar > /tmp/import.log 2>&1 || { cat /tmp/import.log; verdict_fail "ctr images import"; }
ctr images ls -q | grep -qx "$IMAGE" || verdict_fail "no image $IMAGE after import: $(ctr images ls -q)"
echo "${M}image imported, uptime $(up)"
%[7]s( sleep %[6]d; echo "${M}processes:"; ps; verdict_fail "the scenario did not end in %[6]d s" ) &
watchdog=$!
: > /tmp/husk-fails
( . /etc/husk-nested/lib.sh; . /etc/husk-nested/scenario.sh )
rc=$?
kill $watchdog
grep -o 'msg="VM ready".*' /tmp/containerd.log | sed "s/^/${M}shim: /"
echo "${M}scenario done (exit status $rc), uptime $(up)"
[ $rc = 0 ] || echo "scenario exit status $rc" >> /tmp/husk-fails
if [ -s /tmp/husk-fails ]; then
  echo "${V}FAIL $(tr '\n' ';' < /tmp/husk-fails)"
  logs
else
  echo "${V}PASS"
fi
poweroff -f
`, ContainerdNamespace, ContainerdImageRef, ctrMarker, ctrVerdict, strings.Join(modules, " "), timeoutSec, prepare, clockTicker())
}
