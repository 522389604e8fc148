package nested

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// The qemuvm run: the outer guest, with a real /dev/kvm and the vhost_vsock
// modules, runs runtime/virt/qemu as the shim does (test/nested/qemuvm):
// the guest image in QEMU q35 with KVM, the agent over vhost-vsock, a
// container on a disk hot-plugged after boot, Stop, and Cleanup.

// Markers the qemuvm run prints.
const (
	qemuvmLine    = "HUSK-QEMUVM: "
	qemuvmVerdict = "HUSK-QEMUVM-VERDICT: "
	qemuvmRC      = "HUSK-QEMUVM-RC: "
	// QEMUVMMarker is on the inner kernel's command line only: a
	// container that prints it ran in the inner guest.
	QEMUVMMarker = "husk.nested-qemu"
)

// q35Firmware are the files QEMU's q35 machine reads beyond microvm's:
// SeaBIOS (Debian's seabios package) and the TPR patching ROM, by their
// paths in the guest.
var q35Firmware = map[string]string{
	"usr/share/seabios/bios-256k.bin": "/usr/share/seabios/bios-256k.bin",
	"usr/share/qemu/kvmvapic.bin":     "/usr/share/qemu/kvmvapic.bin",
}

// BuildQEMUVM builds test/nested/qemuvm into out, static.
func BuildQEMUVM(ctx context.Context, repo, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./test/nested/qemuvm")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building qemuvm: %v\n%s", err, b)
	}
	return nil
}

// RunQEMUVM boots the outer guest with qemuvm, the guest image's kernel and
// initrd and the containers' EROFS root filesystem, and returns the
// verdict ("PASS" or "FAIL why"), the qemuvm lines and the outer console.
func RunQEMUVM(ctx context.Context, as *Assets, qemuvm, guestKernel, guestInitrd, rootfs, dir string, tee io.Writer) (verdict string, lines []string, console string, err error) {
	files := map[string][]byte{}
	for dst, src := range map[string]string{"guest/vmlinuz": guestKernel, "guest/initrd": guestInitrd, "guest/rootfs.erofs": rootfs} {
		if files[dst], err = os.ReadFile(src); err != nil {
			return "", nil, "", err
		}
	}
	// At Debian's path too: QEMU finds its firmware relative to itself.
	if files["usr/bin/qemu-system-x86_64"], err = os.ReadFile(as.QEMU); err != nil {
		return "", nil, "", err
	}
	for dst, src := range q35Firmware {
		if files[dst], err = os.ReadFile(src); err != nil {
			return "", nil, "", fmt.Errorf("%w: QEMU q35 firmware: %v", ErrMissing, err)
		}
	}
	outer, err := confinedOuter{
		Busybox: as.Busybox, Kernel: as.Kernel, Modules: vhostModules, Program: qemuvm,
		Args:  "/usr/bin/qemu-system-x86_64 /guest/vmlinuz /guest/initrd /guest/rootfs.erofs " + QEMUVMMarker,
		Files: files, QEMU: as.QEMU,
		Fail: qemuvmVerdict, RC: qemuvmRC, Audit: qemuvmLine + "seccomp audit: ",
	}.initrd()
	if err != nil {
		return "", nil, "", err
	}
	outerPath := filepath.Join(dir, "qemuvm-outer.cpio")
	if err := os.WriteFile(outerPath, outer, 0o644); err != nil {
		return "", nil, "", err
	}
	var buf bytes.Buffer
	var out io.Writer = &buf
	if tee != nil {
		out = io.MultiWriter(&buf, tee)
	}
	runErr := RunQEMU(ctx, as.QEMU, QEMUArgs(as.Kernel.Vmlinuz, outerPath, "console=ttyS0 panic=-1 quiet", 3072), out)
	text := buf.String()
	for _, l := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(qemuvmLine)+`.*$`).FindAllString(text, -1) {
		lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, qemuvmLine)))
	}
	if m := regexp.MustCompile(regexp.QuoteMeta(qemuvmVerdict) + `(.*)`).FindStringSubmatch(text); m != nil {
		verdict = strings.TrimSpace(m[1])
	}
	if runErr != nil {
		return verdict, lines, text, fmt.Errorf("outer QEMU: %w", runErr)
	}
	return verdict, lines, text, nil
}
