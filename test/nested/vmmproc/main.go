//go:build huskvmmtest

// Command vmmproc runs in the nested harness's outer guest, which has a
// real /dev/kvm: it starts VMs through runtime/virt/builtin exactly as
// the shim does (this binary is also their VMM process, re-executed with
// builtin.ProcessArg) and checks, from outside, what the kernel says of
// each VMM process. Built static with cgo (libseccomp) and the
// huskvmmtest tag, which adds the request that calls a forbidden system
// call.
//
//	vmmproc KERNEL INITRD DISK
//
// It prints one "HUSK-VMMPROC: <check> ok|FAIL <detail>" line per check
// and a last "HUSK-VMMPROC-VERDICT: PASS" or "...: FAIL <checks>".
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/builtin"
)

const (
	linePrefix    = "HUSK-VMMPROC: "
	verdictPrefix = "HUSK-VMMPROC-VERDICT: "
	// cgroup is the pod cgroup the outer init created (cgroup v2).
	cgroup = "/husk-pod"
	// innerParams are the inner kernel's; the inner init powers off after
	// its vsock exchanges (test/nested InnerInitrd).
	innerParams = "console=ttyS0 reboot=k panic=-1 quiet"
	diskSerial  = "husk-nested"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == builtin.ProcessArg {
		builtin.Main()
	}
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: vmmproc KERNEL INITRD DISK")
		os.Exit(2)
	}
	r := &run{kernel: os.Args[1], initrd: os.Args[2], disk: os.Args[3], h: builtin.New()}
	ctx, cancel := context.WithTimeout(context.Background(), 280*time.Second)
	defer cancel()
	r.boot(ctx)
	r.forbidden(ctx)
	r.stop(ctx)
	r.cleanup(ctx)
	if len(r.failed) == 0 {
		fmt.Println(verdictPrefix + "PASS")
		return
	}
	fmt.Println(verdictPrefix + "FAIL " + strings.Join(r.failed, " "))
	os.Exit(1)
}

type run struct {
	kernel, initrd, disk string
	h                    *builtin.Hypervisor
	failed               []string
}

func (r *run) check(name string, err error) bool {
	if err != nil {
		fmt.Printf("%s%s FAIL %v\n", linePrefix, name, err)
		r.failed = append(r.failed, name)
		return false
	}
	fmt.Printf("%s%s ok\n", linePrefix, name)
	return true
}

func (r *run) config(name string, params ...string) (*virt.VMConfig, error) {
	dir := filepath.Join("/run/husk", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &virt.VMConfig{
		ID: name, Dir: dir, Kernel: r.kernel, Initrd: r.initrd,
		KernelParams: append(strings.Fields(innerParams), params...),
		VCPUs:        2, MemoryMiB: 256, DiskSlots: 2, Cgroup: cgroup,
		Console: prefixed("inner-" + name + "| "),
	}, nil
}

// boot runs the inner guest to its power-off and checks the VMM process
// while it runs: confinement, descriptors, cgroup, a disk attached by
// descriptor, vsock both ways through the VMM's root, stats.
func (r *run) boot(ctx context.Context) {
	cfg, err := r.config("boot")
	if !r.check("boot-config", err) {
		return
	}
	// The host's listener for the guest's connection to port 5000: the
	// VMM dials <its root>/vsock.sock_5000, which is this.
	echoDone := make(chan error, 1)
	l, err := net.Listen("unix", filepath.Join(cfg.Dir, "vsock.sock_5000"))
	if !r.check("boot-listen", err) {
		return
	}
	defer l.Close()
	go func() { echoDone <- echoOnce(l) }()

	start := time.Now()
	v, err := r.h.Start(ctx, cfg)
	if !r.check("boot-start", err) {
		return
	}
	fmt.Printf("%sVMM process %d started in %v\n", linePrefix, v.Pid(), time.Since(start).Round(time.Millisecond))
	r.check("boot-attach-disk", v.AttachDisk(ctx, r.disk, true, diskSerial))
	r.check("boot-confined", confined(v.Pid()))
	r.check("boot-root-is-dir", rootIsDir(v.Pid(), cfg.Dir))
	r.check("boot-fds", onlyVMMFDs(v.Pid(), r.disk))
	r.check("boot-cgroup", inCgroup(v.Pid(), cgroup))

	dialed := r.check("boot-vsock-host-to-guest", dialGuest(ctx, v))
	select {
	case err := <-echoDone:
		r.check("boot-vsock-guest-to-host", err)
	case <-time.After(60 * time.Second):
		r.check("boot-vsock-guest-to-host", errors.New("no connection from the guest within 60s"))
	}
	s, err := v.Stats(ctx)
	if err == nil {
		fmt.Printf("%sstats: exits %v, disks %+v, RSS %d MiB, uptime %v\n", linePrefix, s.Exits, s.Disks, s.RSSBytes>>20, s.Uptime.Round(time.Millisecond))
		if len(s.Disks) != 1 || s.Disks[0].Serial != diskSerial || s.Disks[0].Reads == 0 || s.Exits["mmio"] == 0 {
			err = fmt.Errorf("unexpected stats %+v", s)
		}
	}
	r.check("boot-stats", err)
	if !dialed {
		v.Stop(ctx)
	}
	select {
	case <-v.Done():
		r.check("boot-power-off", v.Err())
	case <-ctx.Done():
		r.check("boot-power-off", ctx.Err())
		v.Stop(context.Background())
	}
	fmt.Printf("%sboot: VM ran %v\n", linePrefix, time.Since(start).Round(time.Millisecond))
	r.check("boot-files-removed", onlyFiles(cfg.Dir, "vsock.sock_5000"))
}

// forbidden makes a VMM process call mount(2): it must die of SIGSYS
// and the VM end with ErrSyscallNotAllowed.
func (r *run) forbidden(ctx context.Context) {
	cfg, err := r.config("forbidden")
	if !r.check("forbidden-config", err) {
		return
	}
	v, err := r.h.Start(ctx, cfg)
	if !r.check("forbidden-start", err) {
		return
	}
	text, err := builtin.CallForbiddenSyscall(ctx, v)
	if err == nil {
		r.check("forbidden-killed", fmt.Errorf("the VMM survived: %s", text))
		v.Stop(ctx)
		return
	}
	select {
	case <-v.Done():
		err := v.Err()
		if errors.Is(err, builtin.ErrSyscallNotAllowed) {
			fmt.Printf("%sforbidden: Err: %v\n", linePrefix, err)
			err = nil
		} else {
			err = fmt.Errorf("Err() = %v, want ErrSyscallNotAllowed", err)
		}
		r.check("forbidden-killed", err)
	case <-time.After(10 * time.Second):
		r.check("forbidden-killed", errors.New("the VMM did not end"))
	}
	r.check("forbidden-files-removed", onlyFiles(cfg.Dir))
}

// stop stops a booting VM.
func (r *run) stop(ctx context.Context) {
	cfg, err := r.config("stop")
	if !r.check("stop-config", err) {
		return
	}
	v, err := r.h.Start(ctx, cfg)
	if !r.check("stop-start", err) {
		return
	}
	time.Sleep(500 * time.Millisecond) // let the guest run a little
	start := time.Now()
	err = v.Stop(ctx)
	if err == nil {
		err = v.Err()
	}
	r.check("stop", err)
	fmt.Printf("%sstop took %v\n", linePrefix, time.Since(start).Round(time.Millisecond))
	r.check("stop-process-gone", gone(v.Pid()))
	r.check("stop-files-removed", onlyFiles(cfg.Dir))
}

// cleanup ends a running VM as a later shim would: through its dir only.
func (r *run) cleanup(ctx context.Context) {
	cfg, err := r.config("cleanup")
	if !r.check("cleanup-config", err) {
		return
	}
	v, err := r.h.Start(ctx, cfg)
	if !r.check("cleanup-start", err) {
		return
	}
	r.check("cleanup", r.h.Cleanup(ctx, cfg.Dir))
	select {
	case <-v.Done():
		r.check("cleanup-ended", nil)
	case <-time.After(10 * time.Second):
		r.check("cleanup-ended", errors.New("the VMM still runs"))
	}
	r.check("cleanup-files-removed", onlyFiles(cfg.Dir))
}

// echoOnce answers one line on one connection with "echo:LINE".
func echoOnce(l net.Listener) error {
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "hello-from-guest\n" {
		return fmt.Errorf("guest sent %q", line)
	}
	_, err = fmt.Fprintf(c, "echo:%s", line)
	return err
}

// dialGuest connects to the guest's port 6000 (retrying until it
// listens) and exchanges a line.
func dialGuest(ctx context.Context, v virt.VM) error {
	deadline := time.Now().Add(150 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := v.Dial(dctx, 6000)
		cancel()
		if err != nil {
			last = err
			time.Sleep(500 * time.Millisecond)
			continue
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "hello-from-host\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "pong:hello-from-host\n" {
			return fmt.Errorf("guest answered %q", line)
		}
		return nil
	}
	return fmt.Errorf("no connection: %v", last)
}

// confined checks every thread: no_new_privs, seccomp filter mode, no
// capability in any set.
func confined(pid int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	want := map[string]string{"NoNewPrivs": "1", "Seccomp": "2"}
	for _, c := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		want[c] = "0000000000000000"
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if w, ok := want[k]; ok && strings.TrimSpace(v) != w {
				return fmt.Errorf("thread %s: %s %s, want %s", t.Name(), k, strings.TrimSpace(v), w)
			}
		}
	}
	fmt.Printf("%s%d threads: NoNewPrivs 1, Seccomp 2, every capability set empty\n", linePrefix, len(tasks))
	return nil
}

// rootIsDir checks that the process's root is dir and that it sees only
// dir's files, in a mount namespace holding that one mount, read-only.
func rootIsDir(pid int, dir string) error {
	var root, d unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/root", pid), &root); err != nil {
		return err
	}
	if err := unix.Stat(dir, &d); err != nil {
		return err
	}
	if root.Dev != d.Dev || root.Ino != d.Ino {
		return fmt.Errorf("root %d:%d, VM dir %d:%d", root.Dev, root.Ino, d.Dev, d.Ino)
	}
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(mi)), "\n")
	if f := strings.Fields(lines[0]); len(lines) != 1 || len(f) < 6 || f[4] != "/" || !strings.HasPrefix(f[5], "ro,") {
		return fmt.Errorf("mounts:\n%s", mi)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	fmt.Printf("%sroot: the VM dir, read-only, the only mount; it sees %v\n", linePrefix, names)
	return nil
}

// onlyVMMFDs checks the process's descriptors: /dev/null on 0, pipes on 1
// and 2, sockets, /dev/kvm, the KVM VM and vCPUs, eventfds, epoll, and
// the attached disk.
func onlyVMMFDs(pid int, disk string) error {
	var diskSt unix.Stat_t
	if err := unix.Stat(disk, &diskSt); err != nil {
		return err
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return err
	}
	count := map[string]int{}
	var bad []string
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		p := fmt.Sprintf("/proc/%d/fd/%d", pid, fd)
		link, err := os.Readlink(p)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		statErr := unix.Stat(p, &st)
		kind := link
		switch {
		case strings.HasPrefix(link, "socket:"):
			kind = "socket"
		case strings.HasPrefix(link, "pipe:"):
			kind = "pipe"
		case strings.HasPrefix(link, "anon_inode:kvm-vcpu:"):
			kind = "anon_inode:kvm-vcpu"
		case strings.HasPrefix(link, "anon_inode:"):
		case statErr == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3):
			kind = "/dev/null"
		case statErr == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(10, 232):
			kind = "/dev/kvm"
		case statErr == nil && st.Dev == diskSt.Dev && st.Ino == diskSt.Ino:
			kind = "disk"
		}
		ok := false
		switch kind {
		case "/dev/null":
			ok = fd == 0
		case "pipe":
			ok = fd == 1 || fd == 2
		case "socket", "/dev/kvm", "anon_inode:kvm-vm", "anon_inode:kvm-vcpu", "anon_inode:[eventfd]", "anon_inode:[eventpoll]", "disk":
			ok = true
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%d:%s", fd, link))
		}
		count[kind]++
	}
	var kinds []string
	for k, n := range count {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	fmt.Printf("%sfds: %s\n", linePrefix, strings.Join(kinds, " "))
	if len(bad) > 0 {
		return fmt.Errorf("unexpected descriptors %v", bad)
	}
	// /dev/kvm itself may be closed once the VM exists: the VM's and
	// vCPUs' descriptors are all a running VMM needs of KVM.
	if count["disk"] != 1 || count["anon_inode:kvm-vm"] != 1 || count["anon_inode:kvm-vcpu"] != 2 || count["/dev/kvm"] > 1 {
		return fmt.Errorf("want the disk, the KVM VM and 2 vCPUs, got %v", count)
	}
	return nil
}

func inCgroup(pid int, cg string) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != "0::"+cg {
		return fmt.Errorf("cgroup %q, want %s", b, cg)
	}
	return nil
}

func gone(pid int) error {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		return fmt.Errorf("process %d still exists", pid)
	}
	return nil
}

// onlyFiles checks that dir holds exactly names.
func onlyFiles(dir string, names ...string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		return fmt.Errorf("%s holds %v, want %v", dir, got, names)
	}
	return nil
}

// prefixed writes each line to stdout with prefix.
func prefixed(prefix string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Println(prefix + sc.Text())
		}
	}()
	return pw
}
