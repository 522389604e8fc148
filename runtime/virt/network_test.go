package virt

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// podMAC is the test pod's eth0.
var podMAC = net.HardwareAddr{0x02, 0x42, 0x0a, 0xd5, 0x00, 0x02}

// testPodNetns makes a named network namespace as a CNI plugin leaves one
// (removed when the test ends): eth0, one end of a veth pair whose other
// end (no address) stays beside it, with podMAC, MTU 1400, 10.213.0.2/24,
// a default route and one to 192.168.213.0/24 through 10.213.0.1, and a
// permanent neighbour entry for the gateway. It returns the namespace's
// path and a netlink handle into it.
func testPodNetns(t *testing.T) (string, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("makes a network namespace: needs root")
	}
	name := fmt.Sprintf("husk-test-%d-%s", os.Getpid(), filepath.Base(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
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
	path := filepath.Join("/run/netns", name)
	h, err := openNetns(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("veth", h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: podMAC, MTU: 1400}, PeerName: "host0"}))
	eth0, err := h.LinkByName("eth0")
	must("eth0", err)
	peer, err := h.LinkByName("host0")
	must("host0", err)
	must("up", h.LinkSetUp(eth0))
	must("up", h.LinkSetUp(peer))
	must("address", h.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 213, 0, 2), Mask: net.CIDRMask(24, 32)}}))
	gw := net.IPv4(10, 213, 0, 1)
	must("default route", h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}))
	must("route", h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw,
		Dst: &net.IPNet{IP: net.IPv4(192, 168, 213, 0), Mask: net.CIDRMask(24, 32)}}))
	must("neighbour", h.NeighAdd(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}))
	return path, h
}

// TestReadNetwork: the pod's eth0 is the one endpoint (not loopback, not
// the peer without an address), with its MAC, MTU and address; the routes
// through it but the kernel's own, and its static neighbour, come along,
// and the guest is given all of it.
func TestReadNetwork(t *testing.T) {
	path, _ := testPodNetns(t)
	p, err := readNetwork(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.endpoints) != 1 {
		t.Fatalf("endpoints %+v, want eth0 alone", p.endpoints)
	}
	e := p.endpoints[0]
	if e.name != "eth0" || e.mac.String() != podMAC.String() || e.mtu != 1400 || fmt.Sprint(e.addrs) != "[10.213.0.2/24]" {
		t.Errorf("endpoint %+v", e)
	}
	var routes []string
	for _, r := range p.routes {
		v := r.view()
		routes = append(routes, v.Destination+" via "+v.Gateway+" dev "+v.Interface)
	}
	slices.Sort(routes)
	if want := []string{"192.168.213.0/24 via 10.213.0.1 dev eth0", "default via 10.213.0.1 dev eth0"}; !slices.Equal(routes, want) {
		t.Errorf("routes %q, want %q", routes, want)
	}
	if len(p.neighbors) != 1 || p.neighbors[0].ip.String() != "10.213.0.1" || p.neighbors[0].dev != "eth0" {
		t.Errorf("neighbours %+v", p.neighbors)
	}
	n := p.agentNetwork()
	if len(n.Interfaces) != 1 || len(n.Routes) != 2 || len(n.Neighbors) != 1 ||
		net.HardwareAddr(n.Interfaces[0].Mac).String() != podMAC.String() || n.Interfaces[0].Mtu != 1400 {
		t.Errorf("the guest's network %v", n)
	}
}

// leftovers lists what of husk's is in the pod's namespace: tap devices
// and ingress qdiscs.
func leftovers(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range links {
		if l.Type() == "tuntap" {
			left = append(left, "tap "+l.Attrs().Name)
		}
		qs, err := h.QdiscList(l)
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

// redirectsTo says where the u32 filters on link's ingress redirect to.
func redirectsTo(t *testing.T, h *netlink.Handle, link netlink.Link) []int {
	t.Helper()
	fs, err := h.FilterList(link, ingressHandle)
	if err != nil {
		t.Fatal(err)
	}
	var to []int
	for _, f := range fs {
		u, ok := f.(*netlink.U32)
		if !ok {
			continue
		}
		for _, a := range u.Actions {
			if m, ok := a.(*netlink.MirredAction); ok && m.MirredAction == netlink.TCA_EGRESS_REDIR {
				to = append(to, m.Ifindex)
			}
		}
	}
	return to
}

// TestNICsSetupAndTeardown: each endpoint gets a tap in the pod's
// namespace with its MTU, up, and tc redirects both ways; the NIC has the
// endpoint's MAC. Tearing down leaves nothing, and so does the cleanup
// after a dead shim, even while the VM's process still holds the tap.
func TestNICsSetupAndTeardown(t *testing.T) {
	path, h := testPodNetns(t)
	p, err := readNetwork(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, dead := range []bool{false, true} {
		dir := t.TempDir()
		n, err := setupNICs(p, dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(n.nics) != 1 || n.nics[0].MAC.String() != podMAC.String() || n.nics[0].MTU != 1400 || n.nics[0].Tap == nil {
			t.Fatalf("NICs %+v", n.nics)
		}
		tap, err := h.LinkByName("tap0_eth0")
		if err != nil {
			t.Fatalf("no tap: %v", err)
		}
		if tap.Type() != "tuntap" || tap.Attrs().MTU != 1400 || tap.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("tap %s %s MTU %d flags %v", tap.Attrs().Name, tap.Type(), tap.Attrs().MTU, tap.Attrs().Flags)
		}
		eth0, _ := h.LinkByName("eth0")
		if got := redirectsTo(t, h, eth0); !slices.Equal(got, []int{tap.Attrs().Index}) {
			t.Errorf("eth0 redirects to %v, want the tap %d", got, tap.Attrs().Index)
		}
		if got := redirectsTo(t, h, tap); !slices.Equal(got, []int{eth0.Attrs().Index}) {
			t.Errorf("the tap redirects to %v, want eth0 %d", got, eth0.Attrs().Index)
		}
		if _, err := os.Stat(filepath.Join(dir, networkRecord)); err != nil {
			t.Errorf("no record: %v", err)
		}
		if !dead {
			if err := n.teardown(); err != nil {
				t.Fatal(err)
			}
		} else {
			// The shim died: its descriptor is the VM process's now,
			// still open; CleanupSandbox's part finds the record.
			held := n.nics[0].Tap
			if err := cleanupNetwork(dir); err != nil {
				t.Fatal(err)
			}
			held.Close()
		}
		if left := leftovers(t, h); len(left) > 0 {
			t.Errorf("dead shim %v: left %q", dead, left)
		}
		if _, err := os.Stat(filepath.Join(dir, networkRecord)); !os.IsNotExist(err) {
			t.Errorf("dead shim %v: the record is left: %v", dead, err)
		}
	}
	if err := cleanupNetwork(t.TempDir()); err != nil {
		t.Errorf("cleanup without a record: %v", err)
	}
}

// TestNICsSetupUnwinds: an endpoint with an ingress qdisc of someone
// else's is refused, and what was made for it is undone while the other
// qdisc stays.
func TestNICsSetupUnwinds(t *testing.T) {
	path, h := testPodNetns(t)
	p, err := readNetwork(path)
	if err != nil {
		t.Fatal(err)
	}
	eth0, _ := h.LinkByName("eth0")
	if err := addIngress(h, eth0.Attrs().Index); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := setupNICs(p, dir); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("%v, want already exists", err)
	}
	if left := leftovers(t, h); !slices.Equal(left, []string{"ingress qdisc on eth0"}) {
		t.Errorf("left %q, want only the qdisc that was there", left)
	}
	if _, err := os.Stat(filepath.Join(dir, networkRecord)); !os.IsNotExist(err) {
		t.Errorf("the record is left: %v", err)
	}
}

// networkPolicy is a hook chain whose sandbox.network answer is patch
// (then Subset of the original, as runtime's policy makes it).
type networkPolicy struct{ patch func(*handler.Network) }

func (networkPolicy) VM(context.Context, *handler.VM) error         { return nil }
func (networkPolicy) Rootfs(context.Context, *handler.Rootfs) error { return nil }
func (p networkPolicy) Network(_ context.Context, n *handler.Network) error {
	got := *n
	got.Interfaces = slices.Clone(n.Interfaces)
	got.Routes = slices.Clone(n.Routes)
	p.patch(&got)
	*n = n.Subset(&got)
	return nil
}

// recordingAgent notes the network CreateSandbox is given.
type recordingAgent struct {
	api.AgentService
	mu  sync.Mutex
	net *api.Network
}

func (r *recordingAgent) CreateSandbox(ctx context.Context, req *api.CreateSandboxRequest) (*api.CreateSandboxResponse, error) {
	r.mu.Lock()
	r.net = req.Network
	r.mu.Unlock()
	return r.AgentService.CreateSandbox(ctx, req)
}

// TestSandboxNetwork: a VM pod whose sandbox container names a network
// namespace gets a NIC for its endpoint and the network in CreateSandbox;
// sandbox.network sees it, and a hook that removes the interface leaves
// the VM without a NIC, without its routes and neighbours, and the
// namespace without a tap. After Close nothing is left in the namespace.
func TestSandboxNetwork(t *testing.T) {
	path, h := testPodNetns(t)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Virt.GuestImage = fakeImage(t, filepath.Join(dir, "guest"))
	cfg.Virt.BootTimeout = "10s"
	rec := &recordingAgent{}
	hv := &fakeHypervisor{t: t, wrap: func(s api.AgentService) api.AgentService { rec.AgentService = s; return rec }}
	hd := New(hv)
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: path}}}}
	for _, tc := range []struct {
		name   string
		patch  func(*handler.Network)
		nics   int
		routes int
	}{
		{"kept", func(*handler.Network) {}, 1, 2},
		{"default route removed", func(n *handler.Network) {
			n.Routes = slices.DeleteFunc(n.Routes, func(r handler.Route) bool { return r.Destination == "default" })
		}, 1, 1},
		{"interface removed", func(n *handler.Network) { n.Interfaces = nil }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen handler.Network
			pol := networkPolicy{func(n *handler.Network) { seen = *n; tc.patch(n) }}
			sb, err := hd.NewSandbox(context.Background(), &handler.SandboxRequest{ID: "pod", StateDir: t.TempDir(),
				Spec: spec, Config: &cfg, Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close(context.Background())
			if seen.Netns != path || len(seen.Interfaces) != 1 || seen.Interfaces[0].Name != "eth0" || seen.Interfaces[0].MAC != podMAC.String() {
				t.Errorf("sandbox.network saw %+v", seen)
			}
			vm := hv.started[len(hv.started)-1]
			if len(vm.cfg.NICs) != tc.nics {
				t.Fatalf("the VM has %d NICs, want %d", len(vm.cfg.NICs), tc.nics)
			}
			rec.mu.Lock()
			got := rec.net
			rec.mu.Unlock()
			_, tapErr := h.LinkByName("tap0_eth0")
			if tc.nics == 0 {
				if got != nil {
					t.Errorf("the guest was given %v", got)
				}
				if tapErr == nil {
					t.Errorf("a tap was made for a removed interface")
				}
			} else {
				if vm.cfg.NICs[0].MAC.String() != podMAC.String() || vm.cfg.NICs[0].ID != "eth0" {
					t.Errorf("NIC %+v", vm.cfg.NICs[0])
				}
				if got == nil || len(got.Interfaces) != 1 || len(got.Routes) != tc.routes || len(got.Neighbors) != 1 {
					t.Errorf("the guest was given %v, want 1 interface, %d routes, 1 neighbour", got, tc.routes)
				}
				if tapErr != nil {
					t.Errorf("no tap while the pod runs: %v", tapErr)
				}
			}
			if err := sb.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if left := leftovers(t, h); len(left) > 0 {
				t.Errorf("left after Close: %q", left)
			}
		})
	}
	// A dead shim: CleanupSandbox, given only the sandbox's state
	// directory, finds the record and removes the tap and qdiscs while the
	// VM's process still holds the tap.
	stateDir := t.TempDir()
	sb, err := hd.NewSandbox(context.Background(), &handler.SandboxRequest{ID: "pod", StateDir: stateDir, Spec: spec, Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, h); len(left) != 3 {
		t.Errorf("while the pod runs: %q, want a tap and two qdiscs", left)
	}
	if err := hd.CleanupSandbox(context.Background(), stateDir); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, h); len(left) > 0 {
		t.Errorf("left after CleanupSandbox: %q", left)
	}
	if _, err := os.Stat(filepath.Join(stateDir, networkRecord)); !os.IsNotExist(err) {
		t.Errorf("the record is left: %v", err)
	}
	_ = sb.Close(context.Background())

	// Without a namespace path (a new namespace, or the host's): no NIC,
	// and nothing is read.
	sb, err = hd.NewSandbox(context.Background(), &handler.SandboxRequest{ID: "pod", StateDir: t.TempDir(),
		Spec: &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}}}, Config: &cfg,
		Policy: networkPolicy{func(*handler.Network) { t.Error("sandbox.network asked without a namespace") }}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())
	if n := len(hv.started[len(hv.started)-1].cfg.NICs); n != 0 {
		t.Errorf("%d NICs without a namespace", n)
	}
}

// TestReadNetworkIPv6: an IPv6 address and default route are read beside
// IPv4's; the link-local address and the kernel's own routes are not (the
// guest makes its own).
func TestReadNetworkIPv6(t *testing.T) {
	path, h := testPodNetns(t)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("fd00:213::2"), Mask: net.CIDRMask(64, 128)},
		Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("fd00:213::1")}); err != nil {
		t.Fatal(err)
	}
	p, err := readNetwork(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.endpoints) != 1 || fmt.Sprint(p.endpoints[0].addrs) != "[10.213.0.2/24 fd00:213::2/64]" {
		t.Fatalf("endpoints %+v", p.endpoints)
	}
	var v6 []string
	for _, r := range p.routes {
		if r.dst.Addr().Is6() {
			v := r.view()
			v6 = append(v6, v.Destination+" via "+v.Gateway)
		}
	}
	if want := []string{"default via fd00:213::1"}; !slices.Equal(v6, want) {
		t.Errorf("IPv6 routes %q, want %q", v6, want)
	}
	n := p.agentNetwork()
	var gw6 bool
	for _, r := range n.Routes {
		if len(r.Destination.Ip) == 16 && r.Destination.PrefixLen == 0 && net.IP(r.Gateway).Equal(net.ParseIP("fd00:213::1")) {
			gw6 = true
		}
	}
	if !gw6 {
		t.Errorf("the guest gets no IPv6 default route: %v", n.Routes)
	}
}

// TestProbePodNetwork: this host (root) can make what a pod network needs,
// and the probe leaves no tap in the test's namespace.
func TestProbePodNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("makes a network namespace: needs root")
	}
	if err := ProbePodNetwork(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if _, err := netlink.LinkByName("huskprobe0"); err == nil {
		t.Errorf("the probe's tap is in the test's namespace")
	}
}
