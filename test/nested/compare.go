package nested

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/huskrt/husk/internal/cpio"
)

// P9 (shared/TARGETS.md): boot to the inner guest's /init, husk's VMM
// beside QEMU microvm, the same kernel and initrd in the same outer VM.
// With OuterConfig.P9 the outer init, after the usual husk run and its
// verdict, boots the inner kernel twice more, once with each VMM, one
// vCPU, 256 MiB, no devices, with "husk.p9" on the command line: the
// inner init then powers off as soon as it has printed its /init line.
// For each, the outer init prints
//
//	HUSK-P9: <vmm> exec <outer uptime at exec> init <outer uptime at the /init line> inner <the inner guest's uptime>
//
// Both VMMs read the same files from the same initramfs and write the
// console to the same kind of pipe, which the outer init reads line by line.

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

// p9Script is the outer init's P9 part: the same inner kernel and initrd
// under each VMM, timed by the outer guest's clock.
func p9Script(appendLine string) string {
	cmdline := appendLine + " " + P9Cmdline
	return fmt.Sprintf(`
p9() {
  name=$1; shift
  t0=$(cut -d' ' -f1 /proc/uptime)
  "$@" < /dev/null 2>&1 | while IFS= read -r line; do
    case "$line" in *"%s"*)
      t1=$(cut -d' ' -f1 /proc/uptime)
      up=${line##*uptime }
      echo "%s$name exec $t0 init $t1 inner ${up%%[!0-9.]*}";;
    esac
  done
}
p9 husk husk-vmm --kernel /inner/vmlinuz --initrd /inner/initrd --mem 256M --cpus 1 --timeout 300s --append '%s'
p9 qemu env LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot -kernel /inner/vmlinuz -initrd /inner/initrd -append '%s'
`, innerInit, p9Marker, cmdline, cmdline)
}

// P9Times is one VMM's P9 line: seconds on the outer guest's clock from
// the VMM's exec to the inner /init line, and the inner guest's uptime
// there.
type P9Times struct {
	ToInit, InnerUptime float64
}

// ParseP9 reads the P9 lines from an outer console.
func ParseP9(console string) map[string]P9Times {
	re := regexp.MustCompile(regexp.QuoteMeta(p9Marker) + `(\S+) exec (\S+) init (\S+) inner (\S+)`)
	res := map[string]P9Times{}
	for _, m := range re.FindAllStringSubmatch(console, -1) {
		t0, _ := strconv.ParseFloat(m[2], 64)
		t1, _ := strconv.ParseFloat(m[3], 64)
		up, _ := strconv.ParseFloat(m[4], 64)
		res[m[1]] = P9Times{ToInit: t1 - t0, InnerUptime: up}
	}
	return res
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
