package virt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	virtionet "github.com/huskrt/husk/vmm/virtio/net"
)

// podNetns is the path of the pod's network namespace in spec (the
// sandbox container's), "" when it has none to join: then the VM has no
// NICs, only the guest's loopback.
func podNetns(spec *specs.Spec) string {
	if spec == nil || spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path
		}
	}
	return ""
}

// openNetns returns a netlink handle into the namespace at path.
func openNetns(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: netlink: %w", path, err)
	}
	return h, nil
}

// readNetwork reads the pod's network from the namespace at path: each
// link that is neither loopback nor a tap and has an address is an
// endpoint; the routes of the main table through endpoints (not those the
// kernel made for an address: the guest's kernel makes them too) and the
// endpoints' static (permanent) neighbour entries come along.
func readNetwork(path string) (*podNetwork, error) {
	h, err := openNetns(path)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: listing links: %w", path, err)
	}
	p := &podNetwork{netns: path}
	byIndex := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || l.Type() == "tuntap" {
			continue
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("network namespace %s: addresses of %s: %w", path, a.Name, err)
		}
		e := endpoint{name: a.Name, index: a.Index, mac: slices.Clone(a.HardwareAddr), mtu: a.MTU}
		for _, ad := range addrs {
			pfx, ok := prefixOf(ad.IPNet)
			if !ok || pfx.Addr().Is6() && pfx.Addr().IsLinkLocalUnicast() {
				continue // the guest makes its own link-local address
			}
			e.addrs = append(e.addrs, pfx)
		}
		if len(e.addrs) == 0 {
			continue
		}
		p.endpoints = append(p.endpoints, e)
		byIndex[a.Index] = a.Name
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: listing routes: %w", path, err)
	}
	for _, r := range routes {
		dev, ok := byIndex[r.LinkIndex]
		if !ok || r.Protocol == unix.RTPROT_KERNEL || r.Type != unix.RTN_UNICAST {
			continue
		}
		pr := podRoute{dev: dev, scope: uint8(r.Scope)}
		if r.Dst != nil {
			if pr.dst, ok = prefixOf(r.Dst); !ok {
				continue
			}
		} else if r.Family == unix.AF_INET6 {
			pr.dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		} else {
			pr.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if a := pr.dst.Addr(); a.Is6() && (a.IsLinkLocalUnicast() || a.IsMulticast()) {
			continue
		}
		if r.Gw != nil {
			pr.gw, _ = netip.AddrFromSlice(r.Gw)
			pr.gw = pr.gw.Unmap()
		}
		if r.Src != nil {
			pr.src, _ = netip.AddrFromSlice(r.Src)
			pr.src = pr.src.Unmap()
		}
		p.routes = append(p.routes, pr)
	}
	for _, e := range p.endpoints {
		neighs, err := h.NeighList(e.index, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("network namespace %s: neighbours of %s: %w", path, e.name, err)
		}
		for _, n := range neighs {
			if n.State&netlink.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			p.neighbors = append(p.neighbors, podNeighbor{ip: ip.Unmap(), mac: slices.Clone(n.HardwareAddr), dev: e.name})
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// prefixOf converts a netlink address.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

// openTapIn creates the tap device name in the namespace at path and
// returns its queue (IFF_TAP | IFF_NO_PI, no vnet header: what both
// backends take; non-persistent, so the device goes with the last
// descriptor of it). TUNSETIFF creates the device in the calling thread's
// namespace: a goroutine locks its thread, enters the namespace and never
// unlocks it, so that the thread ends with it instead of serving others
// in the pod's namespace.
func openTapIn(path, name string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			ch <- result{nil, fmt.Errorf("network namespace %s: %w", path, err)}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			ch <- result{nil, fmt.Errorf("entering network namespace %s: %w", path, err)}
			return
		}
		f, err := virtionet.OpenTap(name)
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

// ingressHandle is the ingress qdisc's handle, ffff:.
var ingressHandle = netlink.MakeHandle(0xffff, 0)

// addIngress adds an ingress qdisc to the link with index.
func addIngress(h *netlink.Handle, index int) error {
	return h.QdiscAdd(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: index, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}})
}

// hasIngress says whether the link with index has an ingress qdisc.
func hasIngress(h *netlink.Handle, l netlink.Link) (bool, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(qs, func(q netlink.Qdisc) bool { return q.Type() == "ingress" }), nil
}

// delIngress removes the link's ingress qdisc and with it its filters; a
// link or qdisc already gone is not an error.
func delIngress(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		return err
	}
	ok, err := hasIngress(h, l)
	if err != nil || !ok {
		return err
	}
	err = h.QdiscDel(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

// redirect makes every frame that arrives on link from leave by link to:
// a match-all u32 filter on from's ingress with a mirred egress redirect.
func redirect(h *netlink.Handle, from, to int) error {
	return h.FilterAdd(&netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: from, Parent: ingressHandle, Priority: 1, Protocol: unix.ETH_P_ALL},
		Actions: []netlink.Action{&netlink.MirredAction{
			ActionAttrs:  netlink.ActionAttrs{Action: netlink.TC_ACT_STOLEN},
			MirredAction: netlink.TCA_EGRESS_REDIR,
			Ifindex:      to,
		}},
	})
}

// delTap removes the tap device name if it is one; a device already gone
// is not an error.
func delTap(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		return err
	}
	if l.Type() != "tuntap" {
		return fmt.Errorf("%s is a %s link, not the tap husk made: %w", name, l.Type(), errdefs.ErrFailedPrecondition)
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}
