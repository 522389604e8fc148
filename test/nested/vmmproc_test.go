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
	"testing"
	"time"
)

// TestNestedVMMProcess boots the inner guest through runtime/virt/builtin
// in the outer guest, which has a real /dev/kvm: one confined VMM process
// per VM, as the shim runs them. It proves that the VMM process, with
// its seccomp allow-list, no capabilities and its root pivoted to the VM's
// directory, boots Debian's kernel to userspace and powers off; that a
// disk passed by descriptor after boot is read by the guest, vsock works
// both ways through the sockets in that root, the process is in the pod's
// cgroup (v2) and holds only a running VMM's descriptors; that a
// forbidden system call kills the VMM process (SIGSYS) and only it; and
// that Stop and a later shim's Cleanup end a running one.
func TestNestedVMMProcess(t *testing.T) {
	repo, as := nestedSetup(t, "about a minute")
	qemu, busybox, kernel := as.QEMU, as.Busybox, as.Kernel

	dir := t.TempDir()
	proc := buildVMMProc(t, repo, dir)
	probe, err := os.ReadFile(buildStatic(t, repo, dir, "./test/nested/vsockprobe", "vsockprobe"))
	if err != nil {
		t.Fatal(err)
	}
	magic := fmt.Sprintf("husk-vmmproc-disk-%x", time.Now().UnixNano())
	disk := make([]byte, 1<<20)
	copy(disk, magic)
	inner, err := InnerInitrd(busybox, probe, kernel, magic)
	skipIfMissing(t, err)
	outer, err := VMMProcOuterInitrd(VMMProcConfig{Busybox: busybox, Kernel: kernel, VMMProc: proc, InnerInitrd: inner, Disk: disk})
	skipIfMissing(t, err)
	outerPath := filepath.Join(dir, "outer.cpio")
	if err := os.WriteFile(outerPath, outer, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var console bytes.Buffer
	var out io.Writer = &console
	if testing.Verbose() {
		out = io.MultiWriter(&console, prefixWriter{os.Stderr})
	}
	start := time.Now()
	runErr := RunQEMU(ctx, qemu, QEMUArgs(kernel.Vmlinuz, outerPath, "console=ttyS0 panic=-1 quiet", 2048), out)
	wall := time.Since(start)
	text := console.String()
	os.WriteFile(filepath.Join(dir, "console.log"), console.Bytes(), 0o644)
	verdict := find(text, regexp.QuoteMeta(vmmprocVerdict)+`(.*)`)
	// The forbidden-syscall check's own mount(2) (syscall 165), killed,
	// is expected; any other record is a call the allow-list lacks.
	for _, l := range regexp.MustCompile(regexp.QuoteMeta(vmmprocAudit)+`.*`).FindAllString(text, -1) {
		if !strings.Contains(l, " syscall=165 ") {
			t.Errorf("a system call off the allow-list was logged: %s", l)
		}
	}
	if runErr != nil || verdict != "PASS" {
		t.Fatalf("verdict %q after %v (qemu: %v)\nconsole:\n%s", verdict, wall.Round(time.Millisecond), runErr, tail(text, 120))
	}
	if !strings.Contains(text, innerDisk+magic) {
		t.Errorf("the inner guest did not read the attached disk (%q)", find(text, regexp.QuoteMeta(innerDisk)+`(.*)`))
	}
	for _, l := range regexp.MustCompile(regexp.QuoteMeta(vmmprocLine)+`.*`).FindAllString(text, -1) {
		if !strings.HasSuffix(l, " ok") {
			t.Log(strings.TrimSpace(l))
		}
	}
	t.Logf("nested VMM process run: PASS in %v wall", wall.Round(time.Millisecond))
}

// buildVMMProc builds test/nested/vmmproc static with cgo: libseccomp,
// linked statically as the agent is, and the huskvmmtest tag.
func buildVMMProc(t *testing.T, repo, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command in PATH to build vmmproc")
	}
	tags := "seccomp netgo osusergo huskvmmtest"
	if os.Getenv("HUSK_VMMPROC_SECCOMP_LOG") != "" {
		tags += " huskvmmseccomplog" // log, do not kill: to find what the allow-list lacks
	}
	out := filepath.Join(dir, "vmmproc")
	cmd := exec.Command(goBin, "build", "-tags", tags, "-trimpath", "-ldflags=-s -w -extldflags=-static", "-o", out, "./test/nested/vmmproc")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vmmproc: %v\n%s", err, b)
	}
	return out
}
