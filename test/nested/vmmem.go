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
	"strconv"
	"strings"

	"github.com/huskrt/husk/runtime/virt/builtin"
)

// The vmmem run (P10 in make bench): the outer guest boots the guest image
// (the virt handler's kernel and initrd with husk's agent) once in the
// builtin hypervisor's confined VMM process and once in QEMU microvm with
// vhost-vsock, and measures each VMM process once its agent has answered
// (test/nested/vmmem).

// Markers the vmmem run prints.
const (
	vmmemLine  = "HUSK-VMMEM: "
	vmmemError = "HUSK-VMMEM-ERROR: "
	vmmemRC    = "HUSK-VMMEM-RC: "
	// vmmemMap starts a line of the builtin VMM process's memory by
	// mapping (its smaps summed by name and kind, guest RAM left out).
	vmmemMap = "HUSK-VMMEM-MAP: "
)

// vhostModules give the outer guest /dev/vhost-vsock, for QEMU's
// vhost-vsock-device, in dependency order.
var vhostModules = []string{"vhost_iotlb", "vhost", "vsock", "vmw_vsock_virtio_transport_common", "vhost_vsock"}

// VMMem is one VMM's memory in the vmmem run, in KiB, and the seconds from
// its start to the agent's answer.
type VMMem struct {
	PSSKiB, GuestPSSKiB, RSSKiB, GuestRSSKiB uint64
	AgentSecs                                float64
}

// OverheadPSSKiB is the process's PSS less its guest's memory.
func (m VMMem) OverheadPSSKiB() uint64 { return m.PSSKiB - min(m.GuestPSSKiB, m.PSSKiB) }

// BuildVMMem builds test/nested/vmmem into out and, next to it, the VMM
// process's program husk-vmm (cmd/husk-vmm) as make build builds it:
// both static, with cgo for libseccomp (the VMM process's allow-list).
// The builtin hypervisor in vmmem runs husk-vmm from next to it, as the
// shim does.
func BuildVMMem(ctx context.Context, repo, out string) error {
	for _, b := range []struct{ tags, out, pkg string }{
		{"seccomp netgo osusergo", out, "./test/nested/vmmem"},
		{"seccomp husk_vmmchild netgo osusergo", filepath.Join(filepath.Dir(out), builtin.VMMBinary), "./cmd/husk-vmm"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", b.tags, "-trimpath",
			"-ldflags=-s -w -extldflags=-static", "-o", b.out, b.pkg)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// RunVMMem boots the outer guest with vmmem and the guest image's kernel
// and initrd, each VM with memMiB of memory, and returns each VMM's
// numbers by name ("builtin", "qemu-microvm") and the outer console. tee,
// when not nil, sees the console as it comes.
func RunVMMem(ctx context.Context, as *Assets, vmmem, guestKernel, guestInitrd string, memMiB int, dir string, tee io.Writer) (map[string]VMMem, string, error) {
	return RunVMMemP7(ctx, as, vmmem, guestKernel, guestInitrd, memMiB, 0, nil, dir, tee)
}

// RunVMMemP7 is RunVMMem, first booting the guest p7Runs times more in
// the builtin hypervisor's VMM process for P7, each followed by the
// kernel tiny (when not nil) without an initrd (ParseP7 reads those lines).
func RunVMMemP7(ctx context.Context, as *Assets, vmmem, guestKernel, guestInitrd string, memMiB, p7Runs int, tiny []byte, dir string, tee io.Writer) (map[string]VMMem, string, error) {
	kernel, err := os.ReadFile(guestKernel)
	if err != nil {
		return nil, "", err
	}
	initrd, err := os.ReadFile(guestInitrd)
	if err != nil {
		return nil, "", err
	}
	files := map[string][]byte{"guest/vmlinuz": kernel, "guest/initrd": initrd}
	// The VMM process's program, next to vmmem (/bin) where the builtin
	// hypervisor looks for it (BuildVMMem built it there).
	vmmBin, err := os.ReadFile(filepath.Join(filepath.Dir(vmmem), builtin.VMMBinary))
	if err != nil {
		return nil, "", fmt.Errorf("the VMM process's program: %w (BuildVMMem builds it next to vmmem)", err)
	}
	files["bin/"+builtin.VMMBinary] = vmmBin
	args := fmt.Sprintf("/guest/vmlinuz /guest/initrd /bin/qemu-system-x86_64 %d %d", memMiB, p7Runs)
	if tiny != nil {
		files["guest/tiny"] = tiny
		args += " /guest/tiny"
	}
	outer, err := confinedOuter{
		Busybox: as.Busybox, Kernel: as.Kernel, Modules: vhostModules, Program: vmmem,
		Args:  args,
		Files: files,
		QEMU:  as.QEMU,
		Fail:  vmmemError, RC: vmmemRC, Audit: vmmemError + "seccomp audit: ",
	}.initrd()
	if err != nil {
		return nil, "", err
	}
	outerPath := filepath.Join(dir, "vmmem-outer.cpio")
	if err := os.WriteFile(outerPath, outer, 0o644); err != nil {
		return nil, "", err
	}
	var console bytes.Buffer
	var out io.Writer = &console
	if tee != nil {
		out = io.MultiWriter(&console, tee)
	}
	runErr := RunQEMU(ctx, as.QEMU, QEMUArgs(as.Kernel.Vmlinuz, outerPath, "console=ttyS0 panic=-1 quiet", 2048+2*memMiB), out)
	text := console.String()
	res := ParseVMMem(text)
	var errs []string
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(vmmemError)+`.*`).FindAllString(text, -1) {
		errs = append(errs, strings.TrimSpace(strings.TrimPrefix(m, vmmemError)))
	}
	switch {
	case runErr != nil:
		return res, text, fmt.Errorf("outer QEMU: %w", runErr)
	case len(errs) > 0:
		return res, text, fmt.Errorf("vmmem: %s", strings.Join(errs, "; "))
	case len(res) != 2:
		return res, text, fmt.Errorf("vmmem printed %d of 2 results", len(res))
	}
	return res, text, nil
}

// ParseVMMem reads the vmmem lines of an outer console.
func ParseVMMem(console string) map[string]VMMem {
	re := regexp.MustCompile(regexp.QuoteMeta(vmmemLine) + `(\S+) pss_kib (\d+) guest_pss_kib (\d+) rss_kib (\d+) guest_rss_kib (\d+) agent_s (\S+)`)
	res := map[string]VMMem{}
	for _, m := range re.FindAllStringSubmatch(console, -1) {
		n := func(i int) uint64 { v, _ := strconv.ParseUint(m[i], 10, 64); return v }
		secs, _ := strconv.ParseFloat(m[6], 64)
		res[m[1]] = VMMem{PSSKiB: n(2), GuestPSSKiB: n(3), RSSKiB: n(4), GuestRSSKiB: n(5), AgentSecs: secs}
	}
	return res
}

// P7Result is what the vmmem run's P7 part printed: each VMM process's CPU
// time (ms) at its guest's first instruction, and the reference load's CPU
// time (ms) in the outer guest, to compare with the same load on the host.
type P7Result struct {
	FirstRunCPUMs []float64
	TinyCPUMs     []float64 // the tiny kernel's runs
	RefCPUMs      []float64
}

// ParseP7 reads the P7 lines of a vmmem run's console.
func ParseP7(console string) P7Result {
	var r P7Result
	for _, m := range regexp.MustCompile(`HUSK-VMMEM-P7(: first_run_cpu_ms|-TINY: first_run_cpu_ms|-REF: cpu_ms) ([0-9.]+)`).FindAllStringSubmatch(console, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(m[1], "-REF"):
			r.RefCPUMs = append(r.RefCPUMs, v)
		case strings.HasPrefix(m[1], "-TINY"):
			r.TinyCPUMs = append(r.TinyCPUMs, v)
		default:
			r.FirstRunCPUMs = append(r.FirstRunCPUMs, v)
		}
	}
	return r
}
