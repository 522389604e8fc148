package guestimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cachedKernel returns the kernel package hack/nested-assets.sh (make
// nested-assets) cached in <repo>/.tools/kernel, or skips.
func cachedKernel(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, ".tools", "kernel", CurrentLink)
			if !unpacked(dir) {
				t.Skipf("no kernel package cached in %s: run make nested-assets", dir)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			t.Skipf("no go.mod above %s to find .tools/kernel", wd)
		}
	}
}

// TestRealKernelHasAgentModules builds the image from Debian's cloud
// kernel with busybox standing in for the agent and checks that every
// module the agent needs is built in or loaded from the image.
func TestRealKernelHasAgentModules(t *testing.T) {
	kdir := cachedKernel(t)
	agent := "/bin/busybox"
	if _, err := os.Stat(agent); err != nil {
		t.Skipf("no %s to stand in for the agent: apt-get install busybox-static", agent)
	}
	out := t.TempDir()
	m, err := Build(context.Background(), Options{KernelDir: kdir, Agent: agent, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range AgentModules {
		c := canonical(name)
		if !slices.Contains(m.Builtin, c) && !slices.Contains(m.Modules, c+".ko") {
			t.Errorf("%s is neither built in (%v) nor loaded (%v)", name, m.Builtin, m.Modules)
		}
	}
	if _, err := Load(out); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s (%s): built in %v; loaded %v; initrd %d bytes, kernel %d bytes",
		m.Package, m.Version, m.Release, m.Builtin, m.Modules, m.Initrd.Size, m.Kernel.Size)
}

// TestAgentBootsInQEMU boots the image in QEMU (TCG) with the real agent
// as /init: it mounts the guest's filesystems, loads every module of
// load-order on the real kernel (a module that fails is fatal to it) and
// listens on vsock, which it says on the console. QEMU has no vsock device
// here (the host has no vhost-vsock): the nested harness (test/nested)
// talks to the agent through husk's VMM.
func TestAgentBootsInQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU TCG (about 10 s): skipped with -short")
	}
	kdir := cachedKernel(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("no qemu-system-x86_64: apt-get install qemu-system-x86")
	}
	img, m := buildGuest(t, kdir)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-nodefaults", "-display", "none",
		"-serial", "stdio", "-no-reboot",
		"-kernel", filepath.Join(img, KernelFile), "-initrd", filepath.Join(img, InitrdFile),
		"-append", "console=ttyS0 panic=-1 quiet")
	console := &lineWaiter{want: "guest=true", found: make(chan struct{})}
	cmd.Stdout = console
	cmd.Stderr = console
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-console.found:
		elapsed := time.Since(start)
		_ = cmd.Process.Kill()
		<-exited
		text := console.String()
		loaded := fmt.Sprintf("msg=\"kernel modules loaded\" component=husk-agent count=%d", len(m.Modules))
		if !strings.Contains(text, loaded) || !strings.Contains(text, "guest=true") {
			t.Fatalf("want %q and a guest agent serving; console:\n%s", loaded, text)
		}
		t.Logf("%s: agent serving on vsock %v after QEMU started, %d modules loaded; initrd %d bytes",
			m.Release, elapsed.Round(time.Millisecond), len(m.Modules), m.Initrd.Size)
	case err := <-exited:
		t.Fatalf("QEMU ended (%v) before the agent served; console:\n%s", err, console.String())
	case <-ctx.Done():
		<-exited
		t.Fatalf("the agent did not serve within the timeout; console:\n%s", console.String())
	}
}

// buildGuest builds the agent as make agent does (static, with cgo for
// libcontainer's nsenter) and a guest image of it from the kernel package
// in kdir, and returns the image's directory and manifest.
func buildGuest(t *testing.T, kdir string) (string, *Manifest) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the agent")
	}
	dir := t.TempDir()
	agent := filepath.Join(dir, "husk-agent")
	build := exec.Command(goTool, "build", "-tags", "seccomp netgo osusergo", "-trimpath",
		"-ldflags=-s -w -extldflags=-static", "-o", agent, "../../cmd/husk-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
	img := filepath.Join(dir, "guest")
	m, err := Build(context.Background(), Options{KernelDir: kdir, Agent: agent, OutDir: img})
	if err != nil {
		t.Fatal(err)
	}
	return img, m
}

// lineWaiter keeps what QEMU prints and closes found once want appears.
type lineWaiter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	found chan struct{}
	seen  bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), w.want) {
		w.seen = true
		close(w.found)
	}
	return len(p), nil
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
