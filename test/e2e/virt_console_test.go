package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/test/devenv"
)

// TestDebugConsoleOnQEMU: `huskctl debug-console` through a real
// containerd, on VM pods of the qemu hypervisor (TCG here). A pod started
// with [virt] debug_console = true takes a shell in its guest: commands
// typed into it run in the guest (its kernel's release comes back) and
// the input's end ends it. A pod started without it is refused with the
// key named, and so are a pod that is not a VM's and one that does not
// exist. TestDebugConsoleInGuest (runtime/virt/qemu) proves the guest's
// agent refuses on its own.
func TestDebugConsoleOnQEMU(t *testing.T) {
	b := needBench(t)
	if testing.Short() {
		t.Skip("boots two VMs in QEMU (TCG without KVM: about 15 s each); skipped with -short")
	}
	cfgOff, m := qemuVirtConfig(t)
	cfgOff = withGuestOverride(t, cfgOff, "")
	cfgOn := withGuestOverride(t, cfgOff, "debug_console = true\n")
	huskctl := buildHuskctl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	hcfg, err := config.Load(config.Path(cfgOn))
	if err != nil {
		t.Fatal(err)
	}
	console := func(id, cfg, in string) (string, string, error) {
		cmd := exec.CommandContext(ctx, huskctl, "debug-console", "--config", cfg, "--namespace", b.Namespace, id)
		cmd.Stdin = strings.NewReader(in)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		return out.String(), stderr.String(), err
	}

	on := name(t, "on")
	cleanupContainer(t, on)
	if _, stderr, err := b.Ctr(ctx, "run", "-d", "--runtime", husk, "--runtime-config-path", cfgOn,
		"--annotation", "io.husk.handler=virt", devenv.BusyboxRef, on, "sleep", "1000"); err != nil {
		t.Fatalf("ctr run -d (console on): %v\n%s", err, stderr)
	}
	sock := filepath.Join(persist.Dir(hcfg.Runtime.StateDir, b.Namespace, on), virt.Name, virt.DebugConsoleSocket)
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the console's socket %s: %v, want mode 0600", sock, err)
	}
	start := time.Now()
	// The guest has no /bin/sh: the agent's built-in shell splits the
	// quotes, which the terminal's echo of the input keeps.
	// From outside the containers: the agent's bundle of the pod's
	// container, its root filesystem mounted.
	out, stderr, err := console(on, cfgOn, "echo 'in''-guest'\ncat /proc/sys/kernel/osrelease\nls /run/husk-agent/containers/"+on+"/rootfs/bin\n")
	if err != nil {
		t.Fatalf("huskctl debug-console: %v\nstdout: %q\nstderr: %s", err, out, stderr)
	}
	for _, want := range []string{"in-guest\r\n", m.Release + "\r\n", " busybox\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("a command through the debug console: %v (stdin's end ends the shell)", time.Since(start).Round(time.Millisecond))
	removeVMContainer(ctx, t, b, on)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the console's socket after the pod: %v, want it gone", err)
	}

	off := name(t, "off")
	cleanupContainer(t, off)
	if _, stderr, err := b.Ctr(ctx, "run", "-d", "--runtime", husk, "--runtime-config-path", cfgOff,
		"--annotation", "io.husk.handler=virt", devenv.BusyboxRef, off, "sleep", "1000"); err != nil {
		t.Fatalf("ctr run -d (console off): %v\n%s", err, stderr)
	}
	out, stderr, err = console(off, cfgOff, "echo nope\n")
	if err == nil || !strings.Contains(stderr, "debug console is off for pod "+off+": set [virt] debug_console = true") {
		t.Errorf("console off: %v, want the key named\nstdout: %q\nstderr: %s", err, out, stderr)
	}
	removeVMContainer(ctx, t, b, off)

	lin := name(t, "linux")
	cleanupContainer(t, lin)
	if _, stderr, err := b.Ctr(ctx, "run", "-d", "--runtime", husk, devenv.BusyboxRef, lin, "sleep", "1000"); err != nil {
		t.Fatalf("ctr run -d (linux): %v\n%s", err, stderr)
	}
	if _, stderr, err := console(lin, cfgOn, ""); err == nil || !strings.Contains(stderr, "is not a VM pod") {
		t.Errorf("a Linux container: %v, %s; want: not a VM pod", err, stderr)
	}
	if _, stderr, err := console("no-such-pod", cfgOn, ""); err == nil || !strings.Contains(stderr, "no pod no-such-pod") {
		t.Errorf("no such pod: %v, %s", err, stderr)
	}
}

// withGuestOverride returns a copy of the configuration file cfg with
// extra added to its [virt] table (its last) and, when HUSK_TEST_GUEST
// names a guest image (huskctl guest build --out DIR), that image instead
// of .tools/guest.
func withGuestOverride(t *testing.T, cfg, extra string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if g := os.Getenv("HUSK_TEST_GUEST"); g != "" {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "guest_image = ") {
				l = "guest_image = \"" + g + "\""
			}
			lines = append(lines, l)
		}
		s = strings.Join(lines, "\n")
	}
	if !strings.Contains(s, "[virt]") || strings.Count(s, "[") != 1 {
		t.Fatalf("%s: want one table, [virt]:\n%s", cfg, s)
	}
	out := filepath.Join(t.TempDir(), "qemu.toml")
	if err := os.WriteFile(out, []byte(s+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// buildHuskctl builds huskctl from this tree.
func buildHuskctl(t *testing.T) string {
	t.Helper()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "huskctl")
	cmd := exec.Command("go", "build", "-tags", "seccomp", "-o", out, "./cmd/huskctl")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building huskctl: %v\n%s", err, b)
	}
	return out
}
