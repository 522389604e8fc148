package nested

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/huskrt/husk/internal/cpio"
)

// P9 (shared/TARGETS.md): boot to the inner guest's /init, husk's VMM
// beside QEMU microvm, the same kernel and initrd in the same outer VM.
// With OuterConfig.P9 the outer init, after the usual husk run and its
// verdict, boots the inner kernel P9Runs more times (at least once) with
// each VMM, interleaved (husk, QEMU as shipped, QEMU tuned, then again),
// one vCPU, 256 MiB, no devices, with "husk.p9" on the command line: the
// inner init then powers off as soon as it has printed its /init line.
// QEMU as shipped is microvm with its defaults (qboot, the linuxboot
// option ROM, the bzImage); QEMU tuned, only when OuterConfig.P9Vmlinux
// gives the uncompressed ELF kernel, is microvm as a fair competitor sets
// it up: no option ROMs, PIT, PIC and RTC off, the in-kernel irqchip, and
// a PVH boot of the ELF kernel. For each boot the outer init prints
//
//	HUSK-P9: <vmm> exec <outer uptime at exec> init <outer uptime at the /init line> inner <the inner guest's uptime>
//
// or, when a boot printed no /init line, "HUSK-P9-FAIL: <vmm>: <its
// last output>". All VMMs read the same files from the same initramfs
// and write the console to the same kind of pipe, which the outer init
// reads line by line.

// p9Marker starts each P9 line on the outer console.
const p9Marker = "HUSK-P9: "

// P9Cmdline is what the inner init looks for to stop at /init.
const P9Cmdline = "husk.p9"

// qemuFirmware are the files QEMU microvm reads from its data directory:
// qboot (microvm's default BIOS) and the option ROMs it may load.
var qemuFirmware = []string{"bios-microvm.bin", "linuxboot_dma.bin", "linuxboot.bin", "pvh.bin"}

// addQEMU copies qemu-system-x86_64, every shared library ldd lists for
// it (at the same paths), and the firmware microvm needs into a.
func addQEMU(a *cpio.Archive, qemu string) error {
	b, err := os.ReadFile(qemu)
	if err != nil {
		return err
	}
	a.File("bin/qemu-system-x86_64", 0o755, b)
	if err := addLibraries(a, qemu); err != nil {
		return err
	}
	for _, fw := range qemuFirmware {
		data, err := os.ReadFile(filepath.Join("/usr/share/qemu", fw))
		if err != nil {
			return fmt.Errorf("%w: QEMU firmware: %v", ErrMissing, err)
		}
		a.File("usr/share/qemu/"+fw, 0o644, data)
	}
	return nil
}

// P9TunedQEMU is the tuned QEMU's machine and accelerator (QEMU 7.2).
const P9TunedQEMU = "-M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on -accel kvm,kernel-irqchip=on"

// p9Script is the outer init's P9 part: the same inner kernel and initrd
// under each VMM, runs times, interleaved, timed by the outer guest's
// clock; tuned are more QEMU runs with /inner/vmlinux, by name, each with
// its machine and accelerator options.
func p9Script(appendLine string, runs int, tuned map[string]string) string {
	cmdline := appendLine + " " + P9Cmdline
	qemu := "env LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu qemu-system-x86_64 -L /usr/share/qemu"
	common := fmt.Sprintf("-cpu host -m 256 -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot -initrd /inner/initrd -append '%s'", cmdline)
	tunedLine := ""
	for _, name := range slices.Sorted(maps.Keys(tuned)) {
		tunedLine += fmt.Sprintf("  p9 %s %s %s %s -kernel /inner/vmlinux\n", name, qemu, tuned[name], common)
	}
	return fmt.Sprintf(`
p9() {
  name=$1; shift
  rm -f /tmp/p9.ok /tmp/p9.last
  t0=$(cut -d' ' -f1 /proc/uptime)
  "$@" < /dev/null 2>&1 | while IFS= read -r line; do
    echo "$line" > /tmp/p9.last
    case "$line" in *"%[1]s"*)
      t1=$(cut -d' ' -f1 /proc/uptime)
      up=${line##*uptime }
      echo "%[2]s$name exec $t0 init $t1 inner ${up%%[!0-9.]*}"
      echo > /tmp/p9.ok;;
    esac
  done
  [ -e /tmp/p9.ok ] || echo "HUSK-P9-FAIL: $name: $(cat /tmp/p9.last 2>/dev/null)"
}
run=0
while [ $run -lt %[3]d ]; do
  run=$((run+1))
  p9 husk husk-vmm --kernel /inner/vmlinuz --initrd /inner/initrd --mem 256M --cpus 1 --timeout 300s --append '%[4]s'
  p9 qemu %[5]s -M microvm -accel kvm %[6]s -kernel /inner/vmlinuz
%[7]sdone
`, innerInit, p9Marker, max(runs, 1), cmdline, qemu, common, tunedLine)
}

// P9Times is one VMM's P9 line: seconds on the outer guest's clock from
// the VMM's exec to the inner /init line, and the inner guest's uptime
// there.
type P9Times struct {
	ToInit, InnerUptime float64
}

// ParseP9 reads the P9 lines from an outer console: each VMM's runs, in
// order, and the failures' lines.
func ParseP9(console string) (map[string][]P9Times, []string) {
	re := regexp.MustCompile(regexp.QuoteMeta(p9Marker) + `(\S+) exec (\S+) init (\S+) inner (\S+)`)
	res := map[string][]P9Times{}
	for _, m := range re.FindAllStringSubmatch(console, -1) {
		t0, _ := strconv.ParseFloat(m[2], 64)
		t1, _ := strconv.ParseFloat(m[3], 64)
		up, _ := strconv.ParseFloat(m[4], 64)
		res[m[1]] = append(res[m[1]], P9Times{ToInit: t1 - t0, InnerUptime: up})
	}
	return res, regexp.MustCompile(`HUSK-P9-FAIL: .*`).FindAllString(console, -1)
}

// Assets are what a nested run needs from the host.
type Assets struct {
	QEMU    string
	Busybox []byte
	Kernel  *Kernel
}

// FindAssets finds QEMU, a static busybox and the cached kernel under
// repo; an ErrMissing says which is missing.
func FindAssets(repo string) (*Assets, error) {
	qemu, err := QEMU()
	if err != nil {
		return nil, err
	}
	bb, err := StaticBusybox()
	if err != nil {
		return nil, err
	}
	k, err := FindKernel(repo)
	if err != nil {
		return nil, err
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		return nil, err
	}
	return &Assets{QEMU: qemu, Busybox: busybox, Kernel: k}, nil
}

// Boot builds the initrds around the static VMM and vsockprobe binaries
// and runs the outer QEMU; it returns the outer console. c's Busybox,
// Kernel, Probe (read from probePath) and InnerInitrd are filled in here.
func Boot(ctx context.Context, as *Assets, c OuterConfig, probePath, dir string) (string, error) {
	probe, err := os.ReadFile(probePath)
	if err != nil {
		return "", err
	}
	inner, err := InnerInitrd(as.Busybox, probe, as.Kernel, c.DiskMagic)
	if err != nil {
		return "", err
	}
	c.Busybox, c.Probe, c.Kernel, c.InnerInitrd = as.Busybox, probe, as.Kernel, inner
	if c.P9 && c.QEMU == "" {
		c.QEMU = as.QEMU
	}
	outer, err := OuterInitrd(c)
	if err != nil {
		return "", err
	}
	outerPath := filepath.Join(dir, "outer.cpio")
	if err := os.WriteFile(outerPath, outer, 0o644); err != nil {
		return "", err
	}
	var console bytes.Buffer
	err = RunQEMU(ctx, as.QEMU, QEMUArgs(as.Kernel.Vmlinuz, outerPath, "console=ttyS0 panic=-1 quiet", 2048), &console)
	return console.String(), err
}
