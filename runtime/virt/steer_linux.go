package virt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/logging"
)

// Offsets in struct bpf_sk_lookup (include/uapi/linux/bpf.h), the context
// of a BPF_PROG_TYPE_SK_LOOKUP program. Addresses are in network order.
const (
	skLookupFamily   = 8
	skLookupProtocol = 12
	skLookupLocalIP4 = 40
	skLookupLocalIP6 = 44 // four words
)

// Keys of the steering program's socket map.
const (
	steerKeyV4 = 0
	steerKeyV6 = 1
)

// loopbackSteer makes every TCP connection to a loopback address of one
// network namespace (127.0.0.1 and ::1, any port) land on a listener of
// its own in that namespace: a BPF sk_lookup program attached to the
// namespace (Linux 5.9) assigns each new connection to the listener of its
// family, before the kernel looks for a socket bound to the port. The
// accepted connection's local address keeps the port the client dialled.
// Closing it detaches the program and closes the listeners: nothing of it
// stays in the namespace, and a process that dies takes it along (the
// link is not pinned).
type loopbackSteer struct {
	v4, v6  net.Listener // v6 nil where the namespace has no IPv6
	sockets *ebpf.Map
	prog    *ebpf.Program
	link    link.Link
}

// steerLoopback sets up loopbackSteer in the namespace at path.
func steerLoopback(path string) (_ *loopbackSteer, retErr error) {
	s := &loopbackSteer{}
	defer func() {
		if retErr != nil {
			s.Close()
		}
	}()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer ns.Close()
	if s.v4, s.v6, err = listenIn(ns); err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	s.sockets, err = ebpf.NewMap(&ebpf.MapSpec{Name: "husk_pf_socks", Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		return nil, fmt.Errorf("port-forward: creating a BPF socket map: %w", bpfErr(err))
	}
	for key, l := range map[uint32]net.Listener{steerKeyV4: s.v4, steerKeyV6: s.v6} {
		if l == nil {
			continue
		}
		if err := putListener(s.sockets, key, l); err != nil {
			return nil, fmt.Errorf("port-forward: %w", err)
		}
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "husk_pf_steer", Type: ebpf.SkLookup, AttachType: ebpf.AttachSkLookup,
		License: "Dual MIT/GPL", Instructions: steerProgram(s.sockets.FD()),
	})
	if err != nil {
		return nil, fmt.Errorf("port-forward: loading the BPF sk_lookup program: %w", bpfErr(err))
	}
	s.link, err = link.AttachNetNs(int(ns), s.prog)
	if err != nil {
		return nil, fmt.Errorf("port-forward: attaching the BPF sk_lookup program to %s: %w", path, bpfErr(err))
	}
	return s, nil
}

// bpfErr classifies a BPF failure: a kernel without sk_lookup or a
// process without CAP_BPF cannot forward ports.
func bpfErr(err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotImplemented)
	}
	return err
}

// steerProgram is the sk_lookup program: a TCP connection to 127.0.0.1
// or ::1 is assigned to the listener at its family's key of the map whose
// descriptor is sockets; anything else goes on to the kernel's own lookup.
func steerProgram(sockets int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the context
		asm.LoadMem(asm.R2, asm.R6, skLookupProtocol, asm.Word),
		asm.JNE.Imm(asm.R2, unix.IPPROTO_TCP, "pass"),
		asm.LoadMem(asm.R2, asm.R6, skLookupFamily, asm.Word),
		asm.JEq.Imm(asm.R2, unix.AF_INET, "v4"),
		asm.JNE.Imm(asm.R2, unix.AF_INET6, "pass"),
		// ::1 is three zero words and 00 00 00 01, loaded little-endian.
		asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP6, asm.Word),
		asm.JNE.Imm(asm.R2, 0, "pass"),
		asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP6+4, asm.Word),
		asm.JNE.Imm(asm.R2, 0, "pass"),
		asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP6+8, asm.Word),
		asm.JNE.Imm(asm.R2, 0, "pass"),
		asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP6+12, asm.Word),
		asm.JNE.Imm(asm.R2, 0x01000000, "pass"),
		asm.StoreImm(asm.RFP, -4, steerKeyV6, asm.Word),
		asm.Ja.Label("steer"),
		// 127.0.0.1 is 7f 00 00 01, loaded little-endian.
		asm.LoadMem(asm.R2, asm.R6, skLookupLocalIP4, asm.Word).WithSymbol("v4"),
		asm.JNE.Imm(asm.R2, 0x0100007f, "pass"),
		asm.StoreImm(asm.RFP, -4, steerKeyV4, asm.Word),
		// sk = bpf_map_lookup_elem(sockets, &key): a reference, or NULL.
		asm.LoadMapPtr(asm.R1, sockets).WithSymbol("steer"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R7, asm.R0),
		// bpf_sk_assign(ctx, sk, 0); bpf_sk_release(sk). An assignment
		// that fails leaves the kernel's lookup to go on.
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnSkAssign.Call(),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.FnSkRelease.Call(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"), // SK_PASS
		asm.Return(),
	}
}

// putListener puts l's socket into sockets at key.
func putListener(sockets *ebpf.Map, key uint32, l net.Listener) error {
	sc, err := l.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var uerr error
	if err := sc.Control(func(fd uintptr) {
		uerr = sockets.Update(key, uint64(fd), ebpf.UpdateAny)
	}); err != nil {
		return err
	}
	if uerr != nil {
		return fmt.Errorf("putting a listener into the BPF socket map: %w", bpfErr(uerr))
	}
	return nil
}

// listenIn opens the steering listeners in ns: 127.0.0.1 and ::1 on a
// port of the kernel's choice (the steering, not the port, brings the
// connections). ::1 is left out where the namespace has no IPv6.
// Sockets are made in the namespace of the thread that makes them: a
// goroutine locks its thread, enters ns and never unlocks it, so that the
// thread ends with it instead of serving others in the pod's namespace.
func listenIn(ns netns.NsHandle) (v4, v6 net.Listener, err error) {
	type result struct {
		v4, v6 net.Listener
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ch <- result{err: fmt.Errorf("entering the namespace: %w", err)}
			return
		}
		// Plain TCP: Go listens with MPTCP where the kernel has it, and a
		// socket map takes TCP sockets only.
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		v4, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			ch <- result{err: fmt.Errorf("port-forward: listening on 127.0.0.1: %w", err)}
			return
		}
		v6, err := lc.Listen(context.Background(), "tcp6", "[::1]:0")
		if err != nil {
			v6 = nil // no IPv6 in the namespace (or no ::1): IPv4 only
		}
		ch <- result{v4: v4, v6: v6}
	}()
	r := <-ch
	return r.v4, r.v6, r.err
}

// listeners returns the steering listeners.
func (s *loopbackSteer) listeners() []net.Listener {
	if s.v6 == nil {
		return []net.Listener{s.v4}
	}
	return []net.Listener{s.v4, s.v6}
}

// Close detaches the program and closes the listeners.
func (s *loopbackSteer) Close() error {
	var errs []error
	if s.link != nil {
		errs = append(errs, s.link.Close())
	}
	if s.prog != nil {
		errs = append(errs, s.prog.Close())
	}
	if s.sockets != nil {
		errs = append(errs, s.sockets.Close())
	}
	for _, l := range []net.Listener{s.v4, s.v6} {
		if l != nil {
			if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// podPortForward is a pod's port forwarding: its loopback steered to a
// forwarder into the VM.
type podPortForward struct {
	steer *loopbackSteer
	fwd   *portForwarder
}

// forwardPorts makes connections to the loopback addresses of the pod's
// network namespace at netns (what containerd's CRI dials for
// `crictl port-forward`) reach the same port in the VM. Where it cannot
// (a kernel without BPF sk_lookup, no CAP_BPF), the pod runs without:
// it returns nil and logs why.
func forwardPorts(ctx context.Context, netns string, vm VM) *podPortForward {
	if netns == "" {
		return nil
	}
	steer, err := steerLoopback(netns)
	if err != nil {
		logging.L(ctx).Warn("port-forward is not available for this pod", "netns", netns, "error", err)
		return nil
	}
	dial := func(ctx context.Context) (net.Conn, error) { return vm.Dial(ctx, api.ForwardPort) }
	return &podPortForward{steer: steer, fwd: newPortForwarder(ctx, dial, steer.listeners(), maxForwards)}
}

// Close ends every forwarded connection and takes the steering out of
// the pod's namespace.
func (p *podPortForward) Close() error {
	if p == nil {
		return nil
	}
	p.fwd.Close()
	return p.steer.Close()
}

// ProbePortForward says whether this host can forward a VM pod's ports as
// the handler does: in a network namespace of its own it steers the
// loopback (BPF sk_lookup, a socket map) and dials a port nobody bound,
// which must reach the steering's listener. Nothing outlives the call:
// the namespace ends with its thread.
func ProbePortForward() error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the probe's namespace
		ch <- probePortForwardInOwnNetns()
	}()
	return <-ch
}

func probePortForwardInOwnNetns() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("a network namespace: %w", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	s, err := steerLoopback(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer s.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := s.v4.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.DialTimeout("tcp4", "127.0.0.1:1", 5*time.Second)
	if err != nil {
		return fmt.Errorf("port-forward: a connection to the steered loopback: %w", err)
	}
	c.Close()
	select {
	case err := <-accepted:
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("port-forward: the steering's listener did not get the connection")
	}
}
