package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

// testNetns makes a network namespace of the test's own and returns a
// netlink handle into it; both go when the test ends.
func testNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("makes a network namespace: needs root")
	}
	ch := make(chan error, 1)
	var ns netns.NsHandle
	go func() {
		// The thread enters the new namespace and dies with the
		// goroutine (never unlocked).
		runtime.LockOSThread()
		var err error
		ns, err = netns.New()
		ch <- err
	}()
	if err := <-ch; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// addLink adds a link named name with mac: one end of a veth pair (this
// kernel may have no dummy links), whose peer is peer.
func addLink(t *testing.T, h *netlink.Handle, name, peer string, mac net.HardwareAddr) {
	t.Helper()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}, PeerName: peer}); err != nil {
		t.Fatalf("adding %s: %v", name, err)
	}
}

// TestConfigureNetwork: two links that stand in for the guest's NICs are
// found by MAC, swap names (each wants the other's), get their MTU, come
// up with their addresses, and the routes and static neighbours are in
// place; loopback is up. One of them appears only after the agent
// started looking, as a NIC probed late does.
func TestConfigureNetwork(t *testing.T) {
	h := testNetns(t)
	mac0, mac1 := mustMAC(t, "02:42:0a:58:00:05"), mustMAC(t, "02:42:0a:59:00:07")
	addLink(t, h, "eth1", "peer0", mac0) // will be eth0
	late := make(chan struct{})
	go func() {
		defer close(late)
		time.Sleep(300 * time.Millisecond)
		addLink(t, h, "eth0", "peer1", mac1) // will be net1
	}()
	n := &api.Network{
		Interfaces: []*api.Interface{
			{Mac: mac0, Name: "eth0", Mtu: 1450, Addresses: []*api.IPAddress{
				{Ip: net.ParseIP("10.88.0.5").To4(), PrefixLen: 16},
				{Ip: net.ParseIP("fd00:88::5"), PrefixLen: 64}}},
			{Mac: mac1, Name: "net1", Mtu: 9000, Addresses: []*api.IPAddress{{Ip: net.ParseIP("10.89.0.7").To4(), PrefixLen: 24}}},
		},
		Routes: []*api.Route{
			{Destination: &api.IPAddress{Ip: net.IPv4zero.To4(), PrefixLen: 0}, Gateway: net.ParseIP("10.88.0.1").To4(), Device: "eth0"},
			{Destination: &api.IPAddress{Ip: net.ParseIP("192.168.50.0").To4(), PrefixLen: 24}, Gateway: net.ParseIP("10.89.0.1").To4(), Device: "net1"},
			{Destination: &api.IPAddress{Ip: net.ParseIP("172.30.0.0").To4(), PrefixLen: 16}, Device: "net1", Scope: unix.RT_SCOPE_LINK},
		},
		Neighbors: []*api.Neighbor{{Ip: net.ParseIP("10.88.0.1").To4(), Mac: mustMAC(t, "02:42:0a:58:00:01"), Device: "eth0"}},
	}
	if err := checkNetwork(n); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := configureNetwork(ctx, h, n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	<-late

	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("loopback not up: %v", err)
	}
	for _, want := range []struct {
		name  string
		mac   net.HardwareAddr
		mtu   int
		addrs []string
	}{
		{"eth0", mac0, 1450, []string{"10.88.0.5/16", "fd00:88::5/64"}},
		{"net1", mac1, 9000, []string{"10.89.0.7/24"}},
	} {
		l, err := h.LinkByName(want.name)
		if err != nil {
			t.Errorf("%s: %v", want.name, err)
			continue
		}
		a := l.Attrs()
		if a.HardwareAddr.String() != want.mac.String() || a.MTU != want.mtu || a.Flags&net.FlagUp == 0 {
			t.Errorf("%s: MAC %v MTU %d flags %v, want %v %d up", want.name, a.HardwareAddr, a.MTU, a.Flags, want.mac, want.mtu)
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ad := range addrs {
			if !ad.IP.IsLinkLocalUnicast() {
				got = append(got, ad.IPNet.String())
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want.addrs) {
			t.Errorf("%s: addresses %v, want %v", want.name, got, want.addrs)
		}
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		l, _ := h.LinkByIndex(r.LinkIndex)
		got = append(got, r.Dst.String()+" via "+r.Gw.String()+" dev "+l.Attrs().Name)
	}
	slices.Sort(got)
	want := []string{"0.0.0.0/0 via 10.88.0.1 dev eth0", "172.30.0.0/16 via <nil> dev net1", "192.168.50.0/24 via 10.89.0.1 dev net1"}
	if !slices.Equal(got, want) {
		t.Errorf("routes %q, want %q", got, want)
	}
	eth0, _ := h.LinkByName("eth0")
	neighs, err := h.NeighList(eth0.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(neighs, func(nb netlink.Neigh) bool {
		return nb.IP.Equal(net.ParseIP("10.88.0.1")) && nb.HardwareAddr.String() == "02:42:0a:58:00:01" && nb.State&netlink.NUD_PERMANENT != 0
	}) {
		t.Errorf("no permanent neighbour 10.88.0.1 on eth0: %v", neighs)
	}
}

// TestConfigureNetworkNoLink: a NIC that never appears is an error after
// the bounded wait, not a hang.
func TestConfigureNetworkNoLink(t *testing.T) {
	h := testNetns(t)
	n := &api.Network{Interfaces: []*api.Interface{{Mac: mustMAC(t, "02:00:00:00:00:09"), Name: "eth0", Mtu: 1500}}}
	start := time.Now()
	err := configureNetwork(context.Background(), h, n, 300*time.Millisecond)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "02:00:00:00:00:09") {
		t.Fatalf("%v, want not found naming the MAC", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// TestCheckNetworkRefuses: every field outside agent.proto's bounds is
// refused as an invalid argument before anything is configured.
func TestCheckNetworkRefuses(t *testing.T) {
	mac := []byte{2, 0, 0, 0, 0, 1}
	ip4 := func(s string, p uint32) *api.IPAddress { return &api.IPAddress{Ip: net.ParseIP(s).To4(), PrefixLen: p} }
	iface := func(f func(*api.Interface)) *api.Network {
		in := &api.Interface{Mac: mac, Name: "eth0", Mtu: 1500, Addresses: []*api.IPAddress{ip4("10.0.0.2", 24)}}
		f(in)
		return &api.Network{Interfaces: []*api.Interface{in}}
	}
	route := func(r *api.Route) *api.Network {
		n := iface(func(*api.Interface) {})
		n.Routes = []*api.Route{r}
		return n
	}
	many := func(k int) []*api.Interface {
		var ins []*api.Interface
		for i := range k {
			ins = append(ins, &api.Interface{Mac: []byte{2, 0, 0, 0, 1, byte(i)}, Name: "e" + string(rune('a'+i)), Mtu: 1500})
		}
		return ins
	}
	for name, n := range map[string]*api.Network{
		"17 interfaces":      {Interfaces: many(17)},
		"nil interface":      {Interfaces: []*api.Interface{nil}},
		"empty name":         iface(func(in *api.Interface) { in.Name = "" }),
		"16-byte name":       iface(func(in *api.Interface) { in.Name = "abcdefghijklmnop" }),
		"name with /":        iface(func(in *api.Interface) { in.Name = "a/b" }),
		"name with :":        iface(func(in *api.Interface) { in.Name = "eth0:1" }),
		"name with a space":  iface(func(in *api.Interface) { in.Name = "eth 0" }),
		"name ..":            iface(func(in *api.Interface) { in.Name = ".." }),
		"name lo":            iface(func(in *api.Interface) { in.Name = "lo" }),
		"5-byte MAC":         iface(func(in *api.Interface) { in.Mac = mac[:5] }),
		"multicast MAC":      iface(func(in *api.Interface) { in.Mac = []byte{1, 0, 0, 0, 0, 1} }),
		"MTU 67":             iface(func(in *api.Interface) { in.Mtu = 67 }),
		"MTU 65536":          iface(func(in *api.Interface) { in.Mtu = 65536 }),
		"3-byte address":     iface(func(in *api.Interface) { in.Addresses = []*api.IPAddress{{Ip: []byte{1, 2, 3}}} }),
		"IPv4 /33":           iface(func(in *api.Interface) { in.Addresses = []*api.IPAddress{ip4("10.0.0.2", 33)} }),
		"IPv6 /129":          iface(func(in *api.Interface) { in.Addresses = []*api.IPAddress{{Ip: net.ParseIP("fd00::1"), PrefixLen: 129}} }),
		"65 addresses":       iface(func(in *api.Interface) { in.Addresses = slices.Repeat([]*api.IPAddress{ip4("10.0.0.2", 24)}, 65) }),
		"nil address":        iface(func(in *api.Interface) { in.Addresses = []*api.IPAddress{nil} }),
		"duplicate name":     {Interfaces: []*api.Interface{{Mac: mac, Name: "eth0", Mtu: 1500}, {Mac: []byte{2, 0, 0, 0, 0, 2}, Name: "eth0", Mtu: 1500}}},
		"duplicate MAC":      {Interfaces: []*api.Interface{{Mac: mac, Name: "eth0", Mtu: 1500}, {Mac: mac, Name: "eth1", Mtu: 1500}}},
		"route without dst":  route(&api.Route{Device: "eth0"}),
		"route bad prefix":   route(&api.Route{Destination: ip4("10.1.0.0", 40), Device: "eth0"}),
		"route gw family":    route(&api.Route{Destination: ip4("10.1.0.0", 16), Gateway: net.ParseIP("fd00::1"), Device: "eth0"}),
		"route src family":   route(&api.Route{Destination: ip4("10.1.0.0", 16), Source: net.ParseIP("fd00::1"), Device: "eth0"}),
		"route on no device": route(&api.Route{Destination: ip4("10.1.0.0", 16), Device: "eth9"}),
		"route scope 200":    route(&api.Route{Destination: ip4("10.1.0.0", 16), Device: "eth0", Scope: 200}),
		"257 routes":         {Routes: slices.Repeat([]*api.Route{{Destination: ip4("10.1.0.0", 16), Device: "eth0"}}, 257)},
		"1025 neighbours":    {Neighbors: slices.Repeat([]*api.Neighbor{{Ip: net.ParseIP("10.0.0.1").To4(), Mac: mac, Device: "eth0"}}, 1025)},
		"neighbour bad ip":   {Interfaces: many(1), Neighbors: []*api.Neighbor{{Ip: []byte{10, 0, 0}, Mac: mac, Device: "ea"}}},
		"neighbour bad mac":  {Interfaces: many(1), Neighbors: []*api.Neighbor{{Ip: net.ParseIP("10.0.0.1").To4(), Mac: mac[:3], Device: "ea"}}},
		"neighbour nowhere":  {Interfaces: many(1), Neighbors: []*api.Neighbor{{Ip: net.ParseIP("10.0.0.1").To4(), Mac: mac, Device: "eth0"}}},
	} {
		if err := checkNetwork(n); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	if err := checkNetwork(iface(func(*api.Interface) {})); err != nil {
		t.Errorf("a good network: %v", err)
	}
	if err := checkNetwork(nil); err != nil {
		t.Errorf("no network: %v", err)
	}
}
