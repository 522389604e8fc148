// Command agentdriver plays the host's part against husk-agent in the
// nested harness: run in the outer guest, it boots the guest image with
// husk's VMM (in its own process, as the shim's VMM process does), reaches
// the agent through the hybrid vsock's Unix socket, and runs containers
// there with the host's own client (agent/client): output, stdin, exit
// codes, exec, kill, two containers in one VM, the second on a disk
// attached after boot. It prints HUSK-AGENT lines and a verdict for the
// test to read on the outer console.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/vmm"
	"github.com/huskrt/husk/vmm/virtio/blk"
	"github.com/huskrt/husk/vmm/virtio/vsock"
)

var (
	kernel = flag.String("kernel", "/inner/vmlinuz", "the guest image's kernel")
	initrd = flag.String("initrd", "/inner/initrd", "the guest image's initrd (husk-agent as /init)")
	image  = flag.String("rootfs", "/inner/rootfs.erofs", "the containers' root filesystem image")
	cmd    = flag.String("append", "console=ttyS0 reboot=k panic=-1 quiet", "the guest's kernel command line")
	uds    = flag.String("uds", "/tmp/v.sock", "the VM's hybrid vsock socket")
	marker = flag.String("marker", "", "a word on the inner kernel's command line, not on the outer's")
	boot   = flag.Duration("boot", 180*time.Second, "how long the agent may take to answer")
)

func main() {
	flag.Parse()
	ctx := context.Background()
	// What huskctl check would say of this (the outer guest's) KVM.
	per, err := vmm.ProbeSpeed(ctx)
	if err != nil || per <= 0 {
		fmt.Printf("HUSK-AGENT-VERDICT: FAIL KVM probe: %v, %v\n", per, err)
		return
	}
	fmt.Printf("HUSK-AGENT: KVM probe: %v a guest instruction\n", per)
	vm, err := vmm.New(vmm.Config{
		Kernel: *kernel, Initrd: *initrd, Cmdline: *cmd, MemorySize: 512 << 20, VCPUs: 2, RNG: true,
		Serial:    os.Stderr,
		Disks:     []vmm.Disk{{Path: *image, ReadOnly: true, ID: "rootfs"}},
		DiskSlots: 2,
		Vsock:     &vmm.Vsock{CID: 3, UDSPath: *uds},
	})
	if err != nil {
		fmt.Printf("HUSK-AGENT-VERDICT: FAIL vmm: %v\n", err)
		return
	}
	if err := vm.Start(ctx); err != nil {
		fmt.Printf("HUSK-AGENT-VERDICT: FAIL start: %v\n", err)
		return
	}
	err = run(ctx, vm)
	vm.Stop()
	reason, werr := vm.Wait()
	st := vm.Stats()
	fmt.Printf("HUSK-AGENT: vm ended: %v (%v); exits %v\n", reason, werr, st.Exits)
	for _, d := range st.Disks {
		fmt.Printf("HUSK-AGENT: disk %q empty=%v reads=%d\n", d.ID, d.Empty, d.Reads)
	}
	vm.Close()
	if err != nil {
		fmt.Printf("HUSK-AGENT-VERDICT: FAIL %v\n", err)
		return
	}
	fmt.Println("HUSK-AGENT-VERDICT: PASS")
}

// dial connects to guest port, retrying while the guest boots.
func dial(ctx context.Context, port uint32, until time.Time) (net.Conn, error) {
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, _, err := vsock.Dial(dctx, *uds, port)
		cancel()
		if err == nil {
			return c, nil
		}
		if time.Now().After(until) {
			return nil, fmt.Errorf("dialing guest port %d: %w", port, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type stream struct {
	id   uint64
	conn net.Conn
}

func attach(ctx context.Context) (stream, error) {
	c, err := dial(ctx, api.StreamPort, time.Now().Add(10*time.Second))
	if err != nil {
		return stream{}, err
	}
	id := api.NewStreamID()
	if err := api.WriteStreamHeader(c, id); err != nil {
		c.Close()
		return stream{}, err
	}
	return stream{id, c}, nil
}

func readAll(c net.Conn) string {
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

func spec(hostname string, args ...string) []byte {
	s := specs.Spec{
		Version:  specs.Version,
		Hostname: hostname,
		Root:     &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: args, Cwd: "/", Env: []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/husk/" + hostname,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
		},
	}
	b, _ := json.Marshal(s)
	return b
}

// wait waits for a process's exit, long-poll by long-poll.
func wait(ctx context.Context, cl *client.Client, id, exec string) (client.WaitResult, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r, err := cl.WaitProcess(ctx, id, exec, 5*time.Second)
		if err != nil || r.Exited {
			return r, err
		}
	}
	return client.WaitResult{}, fmt.Errorf("%s/%s did not exit", id, exec)
}

func run(ctx context.Context, vm *vmm.VM) error {
	start := time.Now()
	conn, err := dial(ctx, api.AgentPort, start.Add(*boot))
	if err != nil {
		return err
	}
	cl := client.New(conn, client.Options{CallTimeout: 30 * time.Second})
	defer cl.Close()
	var check client.CheckResult
	for {
		if check, err = cl.Check(ctx); err == nil || time.Since(start) > *boot {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	fmt.Printf("HUSK-AGENT: check protocol=%d kernel=%s after %v\n", check.ProtocolVersion, check.KernelRelease, time.Since(start).Round(time.Millisecond))
	if err := cl.CreateSandbox(ctx, "pod", "husk-vm"); err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	rootfs := client.Rootfs{DiskSerial: "rootfs", FSType: "erofs"}

	// c1: output on both streams, stdin, the guest's kernel, an exit code.
	in, err := attach(ctx)
	if err != nil {
		return err
	}
	out, err := attach(ctx)
	if err != nil {
		return err
	}
	errs, err := attach(ctx)
	if err != nil {
		return err
	}
	script := `echo cmdline $(cat /proc/cmdline); echo cpus $(grep -c ^processor /proc/cpuinfo); echo host $(hostname); ` +
		`echo written > /tmp/f && echo writable $(cat /tmp/f); read line; echo stdin $line; echo to-stderr >&2; exit 5`
	t0 := time.Now()
	if _, err := cl.CreateContainer(ctx, client.CreateContainerRequest{
		ContainerID: "c1", Spec: spec("c1-host", "sh", "-c", script), Rootfs: rootfs,
		Stdio: client.Stdio{Stdin: in.id, Stdout: out.id, Stderr: errs.id},
	}); err != nil {
		return fmt.Errorf("create c1: %w", err)
	}
	if _, err := cl.StartContainer(ctx, "c1"); err != nil {
		return fmt.Errorf("start c1: %w", err)
	}
	fmt.Printf("HUSK-AGENT: c1 created and started in %v\n", time.Since(t0).Round(time.Millisecond))
	if _, err := in.conn.Write([]byte("hello-from-host\n")); err != nil {
		return err
	}
	in.conn.Close()
	stdout, stderr := readAll(out.conn), readAll(errs.conn)
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		fmt.Printf("HUSK-AGENT: c1 stdout: %s\n", l)
	}
	r, err := wait(ctx, cl, "c1", "")
	if err != nil {
		return err
	}
	fmt.Printf("HUSK-AGENT: c1 exit %d\n", r.ExitStatus)
	var problems []string
	want := func(ok bool, what string) {
		if !ok {
			problems = append(problems, what)
		}
	}
	outerCmdline, _ := os.ReadFile("/proc/cmdline") // the outer guest's: agentdriver runs there
	want(*marker == "" || (strings.Contains(stdout, *marker) && !strings.Contains(string(outerCmdline), *marker)),
		"the container did not see the inner kernel's command line (or the outer one has the marker too)")
	want(strings.Contains(stdout, "host c1-host"), "hostname")
	want(strings.Contains(stdout, "writable written"), "writable rootfs layer")
	want(strings.Contains(stdout, "stdin hello-from-host"), "stdin")
	want(stderr == "to-stderr\n", fmt.Sprintf("stderr %q", stderr))
	want(r.ExitStatus == 5, fmt.Sprintf("exit status %d, want 5", r.ExitStatus))

	// c2, beside c1 in the same VM, on a disk attached now: an exec, then
	// a kill.
	f, err := blk.OpenLocked(*image, true)
	if err != nil {
		return err
	}
	if err := vm.AttachDisk(f, true, "rootfs-c2"); err != nil {
		f.Close()
		return fmt.Errorf("attach: %w", err)
	}
	rootfs2 := client.Rootfs{DiskSerial: "rootfs-c2", FSType: "erofs"}
	if _, err := cl.CreateContainer(ctx, client.CreateContainerRequest{ContainerID: "c2", Spec: spec("c2-host", "sleep", "1000"), Rootfs: rootfs2}); err != nil {
		return fmt.Errorf("create c2: %w", err)
	}
	if _, err := cl.StartContainer(ctx, "c2"); err != nil {
		return fmt.Errorf("start c2: %w", err)
	}
	eout, err := attach(ctx)
	if err != nil {
		return err
	}
	proc, _ := json.Marshal(specs.Process{Args: []string{"sh", "-c", "echo exec in $(hostname); exit 3"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	if err := cl.ExecProcess(ctx, client.ExecProcessRequest{ContainerID: "c2", ExecID: "e1", Process: proc, Stdio: client.Stdio{Stdout: eout.id}}); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if _, err := cl.StartProcess(ctx, "c2", "e1"); err != nil {
		return fmt.Errorf("start exec: %w", err)
	}
	execOut := readAll(eout.conn)
	er, err := wait(ctx, cl, "c2", "e1")
	if err != nil {
		return err
	}
	fmt.Printf("HUSK-AGENT: exec stdout %q exit %d\n", execOut, er.ExitStatus)
	want(execOut == "exec in c2-host\n" && er.ExitStatus == 3, "exec")
	pids, err := cl.ListPids(ctx, "c2")
	want(err == nil && len(pids) == 1, fmt.Sprintf("pids of c2: %v %v", pids, err))
	if err := cl.SignalProcess(ctx, "c2", "", uint32(syscall.SIGKILL), false); err != nil {
		return fmt.Errorf("kill c2: %w", err)
	}
	kr, err := wait(ctx, cl, "c2", "")
	if err != nil {
		return err
	}
	want(kr.ExitStatus == 137, fmt.Sprintf("killed c2 exit %d, want 137", kr.ExitStatus))
	for _, id := range []string{"c1", "c2"} {
		if err := cl.DeleteContainer(ctx, id); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	if err := vm.DetachDisk("rootfs-c2"); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	if err := cl.DestroySandbox(ctx, "pod"); err != nil {
		return fmt.Errorf("destroy sandbox: %w", err)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
