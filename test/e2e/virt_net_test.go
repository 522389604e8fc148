package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/test/devenv"
)

// podSubnets are the /30s a test pod network may use (host .1, pod .2):
// the first that no host route reaches is taken.
var podSubnets = []string{"10.213.77.0/30", "192.168.213.0/30", "10.250.213.0/30"}

// testPodNet is a network namespace as a CNI plugin leaves one: eth0 in
// it, the pod end of a veth pair whose host end is in the test's
// namespace, each with an address in a private /30, and a default route
// through the host end.
type testPodNet struct {
	path     string // the namespace's path, for ctr run --with-ns
	h        *netlink.Handle
	host     string // the host end's name
	hostIP   net.IP
	podIP    net.IP
	prefixed string // the pod's address with its prefix, as ip shows it
}

// newTestPodNet makes the pod's namespace and veth pair; both go when the
// test ends.
func newTestPodNet(t *testing.T) *testPodNet {
	t.Helper()
	subnet := freeSubnet(t)
	base := subnet.IP.To4()
	p := &testPodNet{
		host:   fmt.Sprintf("hkv%d", os.Getpid()%100000),
		hostIP: net.IPv4(base[0], base[1], base[2], base[3]+1).To4(),
		podIP:  net.IPv4(base[0], base[1], base[2], base[3]+2).To4(),
	}
	p.prefixed = p.podIP.String() + "/30"
	name := fmt.Sprintf("husk-e2e-net-%d", os.Getpid())
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the new namespace
		ns, err := netns.NewNamed(name)
		if err == nil {
			ns.Close()
		}
		ch <- err
	}()
	if err := <-ch; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	p.path = filepath.Join("/run/netns", name)
	ns, err := netns.GetFromPath(p.path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if p.h, err = netlink.NewHandleAt(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.h.Close)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	peer := p.host + "p"
	must("veth", netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.host}, PeerName: peer, PeerNamespace: netlink.NsFd(int(ns))}))
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(p.host); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	hl, err := netlink.LinkByName(p.host)
	must("host end", err)
	must("host address", netlink.AddrAdd(hl, &netlink.Addr{IPNet: &net.IPNet{IP: p.hostIP, Mask: net.CIDRMask(30, 32)}}))
	must("host end up", netlink.LinkSetUp(hl))
	pl, err := p.h.LinkByName(peer)
	must("pod end", err)
	must("pod end's name", p.h.LinkSetName(pl, "eth0"))
	must("pod address", p.h.AddrAdd(pl, &netlink.Addr{IPNet: &net.IPNet{IP: p.podIP, Mask: net.CIDRMask(30, 32)}}))
	must("pod end up", p.h.LinkSetUp(pl))
	must("default route", p.h.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Gw: p.hostIP}))
	return p
}

// freeSubnet is the first of podSubnets that no route of the host's
// reaches but through a default route.
func freeSubnet(t *testing.T) *net.IPNet {
	t.Helper()
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range podSubnets {
		_, n, _ := net.ParseCIDR(s)
		used := false
		for _, r := range routes {
			if r.Dst != nil && (r.Dst.Contains(n.IP) || n.Contains(r.Dst.IP)) {
				if ones, _ := r.Dst.Mask.Size(); ones > 0 {
					used = true
				}
			}
		}
		if !used {
			return n
		}
	}
	t.Fatalf("every test subnet %v is routed on this host", podSubnets)
	return nil
}

// leftovers lists the taps and ingress qdiscs in the pod's namespace.
func (p *testPodNet) leftovers(t *testing.T) []string {
	t.Helper()
	links, err := p.h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range links {
		if l.Type() == "tuntap" {
			left = append(left, "tap "+l.Attrs().Name)
		}
		qs, err := p.h.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Type() == "ingress" {
				left = append(left, "ingress qdisc on "+l.Attrs().Name)
			}
		}
	}
	return left
}

// guestServer is a VM container's command: it answers each connection on
// port 8080 with a greeting and its eth0's addresses, one after another.
const guestServer = `while true; do { echo hello from the guest; ip -o -4 addr show dev eth0; } | nc -l -p 8080; done`

// runGuestServer runs guestServer detached as container id in a VM on
// QEMU in pod's namespace and returns its first answer at the pod's
// address, and how long that took from ctr run.
func runGuestServer(ctx context.Context, t *testing.T, b *devenv.Containerd, cfg string, pod *testPodNet, id string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	if _, stderr, err := b.Ctr(ctx, "run", "-d", "--runtime", husk, "--runtime-config-path", cfg,
		"--annotation", "io.husk.handler=virt", "--with-ns", "network:"+pod.path,
		devenv.BusyboxRef, id, "sh", "-c", guestServer); err != nil {
		t.Fatalf("ctr run -d: %v\n%s", err, stderr)
	}
	var last error
	addr := net.JoinHostPort(pod.podIP.String(), "8080")
	for {
		if ctx.Err() != nil {
			t.Fatalf("the guest's server at %s never answered (last: %v); in the namespace: %q", addr, last, pod.leftovers(t))
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(b) == 0 {
			last = fmt.Errorf("read %q: %v", b, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		got := string(b)
		if !strings.HasPrefix(got, "hello from the guest\n") || !strings.Contains(got, "eth0") || !strings.Contains(got, "inet "+pod.prefixed) {
			t.Errorf("the guest answered %q, want its greeting and eth0 with %s", got, pod.prefixed)
		}
		return got, time.Since(start)
	}
}

// TestVMPodNetworkOnQEMU: a VM container run through ctr in a network
// namespace a CNI plugin could have left (--with-ns network:<path>) gets
// the pod's eth0 in its guest, with its address; the host reaches a
// server in the guest at the pod's address, through the veth pair, tc's
// redirects and the VM's tap. Once the container is removed no tap, qdisc
// or filter is left in the namespace and no QEMU runs; and so after a
// second pod's shim is killed under it and containerd cleans up.
func TestVMPodNetworkOnQEMU(t *testing.T) {
	b := needBench(t)
	if testing.Short() {
		t.Skip("boots a VM in QEMU (TCG without KVM: about 15 s); skipped with -short")
	}
	cfg, _ := qemuVirtConfig(t)
	pod := newTestPodNet(t)
	id := name(t, "")
	cleanupContainer(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, took := runGuestServer(ctx, t, b, cfg, pod, id)
	t.Logf("ctr run to the guest's first answer at %s: %v", pod.podIP, took.Round(time.Millisecond))
	if left := pod.leftovers(t); len(left) != 3 {
		t.Errorf("while the pod runs the namespace has %q, want a tap and two ingress qdiscs", left)
	}
	removeVMContainer(ctx, t, b, id)
	if left := pod.leftovers(t); len(left) > 0 {
		t.Errorf("left in the pod's namespace: %q", left)
	}

	// A dead shim: its QEMU holds the tap, the endpoint has its qdisc;
	// containerd's cleanup (the shim's delete command) must remove both.
	id2 := name(t, "deadshim")
	cleanupContainer(t, id2)
	runGuestServer(ctx, t, b, cfg, pod, id2)
	shim := shimPidOf(t, id2)
	if shim == 0 {
		t.Fatal("no shim process found for the second pod")
	}
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		out, _, _ := b.Ctr(ctx, "task", "ls")
		if !strings.Contains(out, id2) || strings.Contains(lineOf(out, id2), "STOPPED") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("task still listed as running after its shim died:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _, _ = b.Ctr(ctx, "task", "delete", id2)
	if _, stderr, err := b.Ctr(ctx, "container", "delete", id2); err != nil {
		t.Fatalf("ctr container delete: %v\n%s", err, stderr)
	}
	requireClean(t, id2)
	if pids := qemuOf(id2); len(pids) > 0 {
		t.Errorf("QEMU %v of %s still runs after its shim died and containerd cleaned up", pids, id2)
	}
	if left := pod.leftovers(t); len(left) > 0 {
		t.Errorf("left in the pod's namespace after the dead shim's cleanup: %q", left)
	}
}
