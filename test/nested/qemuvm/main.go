// Command qemuvm runs in the nested harness's outer guest, which has a
// real /dev/kvm and /dev/vhost-vsock, and proves runtime/virt/qemu there
// as the shim uses it: it boots the guest image (husk's kernel and initrd
// with the agent) through qemu.New().Start, in the pod cgroup /husk-pod,
// reaches the agent over vhost-vsock (Check), attaches a root filesystem
// after boot and runs a container on it with the host's own agent client
// (agent/client), detaches the disk once the container is deleted, stops
// the VM, and then has a second VM's QEMU ended by Cleanup as a later shim
// would. Built static with cgo (libseccomp), as the shim is.
//
//	qemuvm QEMU KERNEL INITRD ROOTFS MARKER
//
// It prints "HUSK-QEMUVM: ..." lines, and "HUSK-QEMUVM-VERDICT: PASS" or
// "HUSK-QEMUVM-VERDICT: FAIL reason".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/qemu"
)

const (
	linePrefix = "HUSK-QEMUVM: "
	verdict    = "HUSK-QEMUVM-VERDICT: "
	params     = "console=ttyS0 reboot=k panic=-1 quiet"
	podCgroup  = "/husk-pod"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: qemuvm QEMU KERNEL INITRD ROOTFS MARKER")
		os.Exit(2)
	}
	// QEMU's libraries are at their host paths, which the outer guest's
	// loader has no cache for.
	os.Setenv("LD_LIBRARY_PATH", "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	qcfg := virt.QEMUConfig{Binary: os.Args[1], Accel: qemu.AccelKVM}
	if err := run(ctx, qcfg, os.Args[2], os.Args[3], os.Args[4], os.Args[5]); err != nil {
		fmt.Printf("%sFAIL %v\n", verdict, err)
		return
	}
	fmt.Printf("%sPASS\n", verdict)
}

func say(f string, a ...any) { fmt.Printf(linePrefix+f+"\n", a...) }

func run(ctx context.Context, qcfg virt.QEMUConfig, kernel, initrd, rootfs, marker string) error {
	h := qemu.New()
	note, err := h.Probe(ctx, qcfg)
	if err != nil {
		return fmt.Errorf("probe: %v (%s)", err, note)
	}
	say("probe: %s", note)
	dir := "/run/husk/qemuvm"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	console, err := os.Create("/tmp/qemu-console.log")
	if err != nil {
		return err
	}
	defer console.Close()
	start := time.Now()
	v, err := h.Start(ctx, &virt.VMConfig{
		ID: "qemuvm", Dir: dir, Kernel: kernel, Initrd: initrd,
		KernelParams: append(strings.Fields(params), marker), VCPUs: 1, MemoryMiB: 512, DiskSlots: 2,
		Cgroup: podCgroup, Console: console, QEMU: qcfg,
	})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	say("QEMU %d started in %v", v.Pid(), time.Since(start).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			v.Stop(context.WithoutCancel(ctx))
		}
	}()
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", v.Pid())); err != nil || strings.TrimSpace(string(b)) != "0::"+podCgroup {
		return fmt.Errorf("QEMU's cgroup is %q (%v), want %s", b, err, podCgroup)
	}
	cl, err := agent(ctx, v)
	if err != nil {
		return fmt.Errorf("%w; console ends:\n%s", err, consoleTail())
	}
	defer cl.Close()
	say("agent answered Check %v after Start began", time.Since(start).Round(time.Millisecond))
	if st, err := v.Stats(ctx); err == nil {
		say("QEMU's RSS once the agent answered: %d MiB (guest memory %d MiB)", st.RSSBytes>>20, st.MemoryMiB)
	}

	if err := container(ctx, v, cl, rootfs, marker); err != nil {
		return fmt.Errorf("%w; console ends:\n%s", err, consoleTail())
	}
	pid := v.Pid()
	t0 := time.Now()
	if err := v.Stop(ctx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	stopped = true
	say("Stop took %v; Err %v", time.Since(t0).Round(time.Millisecond), v.Err())
	if err := v.Err(); err != nil {
		return fmt.Errorf("the VM ended with an error after Stop: %w", err)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("QEMU %d still there after Stop (kill 0: %v)", pid, err)
	}
	return cleanup(ctx, qcfg, kernel, initrd)
}

// agent dials the agent until it answers Check.
func agent(ctx context.Context, v virt.VM) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := v.Dial(dctx, api.AgentPort)
		dcancel()
		if err == nil {
			cl := client.New(conn, client.Options{CallTimeout: 30 * time.Second})
			check, err := cl.Check(ctx)
			if err == nil {
				say("check: protocol %d, kernel %s", check.ProtocolVersion, check.KernelRelease)
				return cl, nil
			}
			cl.Close()
			last = err
		} else {
			last = err
		}
		select {
		case <-v.Done():
			return nil, fmt.Errorf("the VM ended: %v", v.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("the agent did not answer: %v", last)
}

// container attaches rootfs after boot, runs a container on it that
// prints the guest's command line, deletes it and detaches the disk.
func container(ctx context.Context, v virt.VM, cl *client.Client, rootfs, marker string) error {
	t0 := time.Now()
	if err := v.AttachDisk(ctx, rootfs, true, "rootfs"); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	say("AttachDisk took %v", time.Since(t0).Round(time.Millisecond))
	if err := cl.CreateSandbox(ctx, "pod", "husk-qemu"); err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	out, err := v.Dial(ctx, api.StreamPort)
	if err != nil {
		return err
	}
	id := api.NewStreamID()
	if err := api.WriteStreamHeader(out, id); err != nil {
		return err
	}
	t1 := time.Now()
	s, _ := json.Marshal(specs.Spec{
		Version: specs.Version, Hostname: "c1", Root: &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh", "-c", "echo cmdline $(cat /proc/cmdline); echo disk $(cat /sys/block/*/serial)"}, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{CgroupsPath: "/husk/c1", Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace}}},
	})
	if _, err := cl.CreateContainer(ctx, client.CreateContainerRequest{
		ContainerID: "c1", Spec: s, Rootfs: client.Rootfs{DiskSerial: "rootfs", FSType: "erofs"},
		Stdio: client.Stdio{Stdout: id},
	}); err != nil {
		return fmt.Errorf("create container on the attached disk: %w", err)
	}
	say("the agent found the disk attached after boot and created c1 in %v", time.Since(t1).Round(time.Millisecond))
	if _, err := cl.StartContainer(ctx, "c1"); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	_ = out.SetReadDeadline(time.Now().Add(60 * time.Second))
	b, _ := io.ReadAll(out)
	out.Close()
	var r client.WaitResult
	for i := 0; i < 12 && !r.Exited; i++ {
		if r, err = cl.WaitProcess(ctx, "c1", "", 5*time.Second); err != nil {
			return fmt.Errorf("wait: %w", err)
		}
	}
	text := strings.TrimSpace(string(b))
	say("c1 printed %q, exit %d", text, r.ExitStatus)
	outer, _ := os.ReadFile("/proc/cmdline")
	switch {
	case !r.Exited || r.ExitStatus != 0:
		return fmt.Errorf("c1: exited %v, status %d", r.Exited, r.ExitStatus)
	case !strings.Contains(text, marker) || strings.Contains(string(outer), marker):
		return errors.New("c1 did not see the inner kernel's command line")
	case !strings.Contains(text, "disk rootfs"):
		return errors.New("c1 did not see the disk's serial")
	}
	if err := cl.DeleteContainer(ctx, "c1"); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	t2 := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := v.DetachDisk(dctx, "rootfs"); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	say("DetachDisk (until the guest let the device go) took %v", time.Since(t2).Round(time.Millisecond))
	return nil
}

// cleanup starts a second VM and ends it as a later shim would, from its
// directory alone.
func cleanup(ctx context.Context, qcfg virt.QEMUConfig, kernel, initrd string) error {
	dir := "/run/husk/qemuvm-left"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	v, err := qemu.New().Start(ctx, &virt.VMConfig{ID: "left", Dir: dir, Kernel: kernel, Initrd: initrd,
		KernelParams: strings.Fields(params), VCPUs: 1, MemoryMiB: 256, DiskSlots: 1, QEMU: qcfg})
	if err != nil {
		return fmt.Errorf("start the second VM: %w", err)
	}
	pid := v.Pid()
	if err := qemu.New().Cleanup(ctx, dir); err != nil {
		v.Stop(ctx)
		return fmt.Errorf("cleanup: %w", err)
	}
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		v.Stop(ctx)
		return errors.New("QEMU still runs after Cleanup")
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("QEMU %d still there after Cleanup (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "qemu.pid")); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the record after Cleanup: %v", err)
	}
	say("Cleanup ended QEMU %d", pid)
	return nil
}

func consoleTail() string {
	b, _ := os.ReadFile("/tmp/qemu-console.log")
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
