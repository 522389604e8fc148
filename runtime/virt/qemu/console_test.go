package qemu

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/runtime/virt"
)

// TestDebugConsoleInGuest boots the guest image in QEMU (TCG here) twice
// and asks its agent for a debug console (api.DebugConsolePort) as the
// shim's relay would: booted without husk.debug_console=1 the agent
// refuses it (off means off, whatever the host asks); booted with it a
// shell runs in the guest, on a terminal, in the guest's namespaces: its
// output comes back (the guest's kernel release, PID 1 the agent). It
// needs a guest image with this tree's agent: make guest, or
// HUSK_TEST_GUEST=DIR for one built with huskctl guest build --out DIR.
func TestDebugConsoleInGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Debian's kernel in QEMU twice (TCG here: about 10 s each); skipped with -short")
	}
	needQEMU(t)
	kernel, initrd := guestImage(t)
	base := []string{"console=ttyS0", "reboot=k", "panic=-1", "quiet"}
	t.Run("off", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		v, con := bootAgent(ctx, t, kernel, initrd, base)
		c, answer := askConsole(ctx, t, v, con)
		defer c.Close()
		if answer != api.ConsoleOff {
			t.Fatalf("the agent of a VM booted without the console answered %d, want ConsoleOff (%d)", answer, api.ConsoleOff)
		}
		// And it closes: the host gets nothing more.
		_ = api.WriteConsoleData(c, []byte("echo nope\n"))
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if b, err := io.ReadAll(c); len(b) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("after the refusal: %q, %v; want the end", b, err)
		}
	})
	t.Run("on", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		v, con := bootAgent(ctx, t, kernel, initrd, append(base, api.DebugConsoleParam))
		c, answer := askConsole(ctx, t, v, con)
		defer c.Close()
		if err := api.ConsoleAnswerError(answer); err != nil {
			t.Fatalf("%v\nconsole:\n%s", err, con.String())
		}
		// The built-in shell (the image has no /bin/sh) splits quotes:
		// the echo of the input has them, the output not.
		in := "echo 'in''-guest'\ncat /proc/sys/kernel/osrelease /proc/1/cmdline\nexit\n"
		if err := api.WriteConsoleData(c, []byte(in)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		out, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the console: %v (%q)", err, out)
		}
		text := string(out)
		m, err := guestimage.Load(filepath.Dir(kernel))
		if err != nil {
			t.Fatal(err)
		}
		// The guest's kernel, and its PID 1 the agent (the initramfs's
		// /init): the guest's namespaces, not a container's.
		for _, want := range []string{"in-guest\r\n", m.Release + "\r\n", "/init"} {
			if !strings.Contains(text, want) {
				t.Errorf("console output lacks %q:\n%s", want, text)
			}
		}
		t.Logf("console output:\n%s", strings.ReplaceAll(text, "\x00", " ")) // cmdline's NULs
	})
}

// bootAgent boots the image with params and waits for its agent's Check.
func bootAgent(ctx context.Context, t *testing.T, kernel, initrd string, params []string) (virt.VM, *console) {
	t.Helper()
	con := newConsole()
	v, err := New().Start(ctx, &virt.VMConfig{
		ID: "qemu-console", Dir: t.TempDir(), Kernel: kernel, Initrd: initrd,
		KernelParams: params, VCPUs: 1, MemoryMiB: 256, DiskSlots: 1, Console: con,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Stop(context.Background()) })
	for {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := v.Dial(dctx, api.AgentPort)
		dcancel()
		if err == nil {
			cl := client.New(conn, client.Options{CallTimeout: 30 * time.Second})
			_, err = cl.Check(ctx)
			cl.Close()
			if err == nil {
				return v, con
			}
		}
		select {
		case <-v.Done():
			t.Fatalf("the VM ended (%v) before its agent answered (last: %v)\nconsole:\n%s", v.Err(), err, con.String())
		case <-ctx.Done():
			t.Fatalf("the agent did not answer: %v\nconsole:\n%s", err, con.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// askConsole dials the console port and returns the agent's answer.
func askConsole(ctx context.Context, t *testing.T, v virt.VM, con *console) (net.Conn, byte) {
	t.Helper()
	c, err := v.Dial(ctx, api.DebugConsolePort)
	if err != nil {
		t.Fatalf("dialling the console port: %v (a guest image built before the debug console? make guest)\nconsole:\n%s", err, con.String())
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if err := api.WriteConsoleHeader(c, 24, 80); err != nil {
		t.Fatal(err)
	}
	var a [1]byte
	if _, err := io.ReadFull(c, a[:]); err != nil {
		t.Fatalf("the agent's answer: %v\nconsole:\n%s", err, con.String())
	}
	_ = c.SetDeadline(time.Time{})
	return c, a[0]
}
