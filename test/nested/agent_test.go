package nested

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

// TestNestedAgent runs containers in a VM booted by husk's VMM: the guest
// image of make guest (Debian's kernel, husk-agent as /init), a busybox
// root filesystem as an EROFS disk, and, in the outer guest, agentdriver
// playing the host with the host's own agent client over hybrid vsock.
// Two containers share the VM; output, stderr, stdin, exit codes, an exec,
// a kill, a writable layer over the read-only image and a second root
// filesystem attached to the running VM (a disk slot) are checked, and
// that the container ran in the inner guest (it sees the inner kernel's
// command line).
func TestNestedAgent(t *testing.T) {
	repo, as := nestedSetup(t, "about a minute")
	qemu, busybox, kernel := as.QEMU, as.Busybox, as.Kernel
	mkfs := lookMkfsErofs(t)

	dir := t.TempDir()
	driver := buildStatic(t, repo, dir, "./test/nested/agentdriver", "agentdriver")
	agent := buildAgent(t, repo, dir)
	img := filepath.Join(dir, "guest")
	if _, err := guestimage.Build(context.Background(), guestimage.Options{
		KernelDir: filepath.Join(repo, ".tools", "kernel", "cloud-amd64"), Agent: agent, OutDir: img}); err != nil {
		t.Fatal(err)
	}
	rootDir := filepath.Join(dir, "rootfs")
	if err := devenv.BusyboxRootfs(rootDir); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.erofs")
	if out, err := exec.Command(mkfs, rootfs, rootDir).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	outer, err := AgentOuterInitrd(AgentConfig{
		Busybox: busybox, Kernel: kernel, Driver: driver,
		GuestKernel: filepath.Join(img, guestimage.KernelFile), GuestInitrd: filepath.Join(img, guestimage.InitrdFile),
		Rootfs: rootfs,
	})
	if err != nil {
		t.Fatal(err)
	}
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
	verdict := find(text, regexp.QuoteMeta(agentVerdict)+`(.*)`)
	if runErr != nil || verdict != verdictPass {
		t.Fatalf("verdict %q after %v (qemu: %v)\nconsole:\n%s", verdict, wall.Round(time.Millisecond), runErr, tail(text, 120))
	}
	for _, l := range regexp.MustCompile(`(?m)^HUSK-AGENT: .*$`).FindAllString(text, -1) {
		t.Log(strings.TrimSpace(l))
	}
	t.Logf("nested agent run: PASS in %v wall", wall.Round(time.Millisecond))
}

// buildAgent builds husk-agent as make agent does: static, with cgo for
// libcontainer's nsenter.
func buildAgent(t *testing.T, repo, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command in PATH to build the agent")
	}
	out := filepath.Join(dir, "husk-agent")
	cmd := exec.Command(goBin, "build", "-tags", "seccomp netgo osusergo", "-trimpath", "-ldflags=-s -w -extldflags=-static", "-o", out, "./cmd/husk-agent")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, b)
	}
	return out
}
