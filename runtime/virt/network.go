package virt

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/runtime/handler"
)

// Bounds of a pod's network, agent.proto's: a namespace with more is
// refused rather than cut short.
const (
	maxEndpoints = 16
	maxAddresses = 64
	maxRoutes    = 256
	maxNeighbors = 1024
)

// podNetwork is what the handler found in a pod's network namespace (what
// the CNI plugins left there) and gives the pod's VM: each endpoint
// becomes one of its NICs, with the endpoint's MAC, MTU and addresses.
type podNetwork struct {
	netns     string // the namespace's path
	endpoints []endpoint
	routes    []podRoute
	neighbors []podNeighbor
}

// endpoint is a link of the pod's namespace that the VM takes over.
type endpoint struct {
	name  string
	index int // in the pod's namespace
	mac   net.HardwareAddr
	mtu   int
	addrs []netip.Prefix
}

// podRoute is a route of the pod's main table through an endpoint.
type podRoute struct {
	dst   netip.Prefix
	gw    netip.Addr // invalid: on-link
	dev   string
	src   netip.Addr // invalid: none
	scope uint8
}

// podNeighbor is a static neighbour entry on an endpoint.
type podNeighbor struct {
	ip  netip.Addr
	mac net.HardwareAddr
	dev string
}

// check bounds p as agent.proto does.
func (p *podNetwork) check() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("network namespace %s: %s: %w", p.netns, fmt.Sprintf(f, a...), errdefs.ErrInvalidArgument)
	}
	if len(p.endpoints) > maxEndpoints {
		return bad("%d interfaces, a VM takes at most %d", len(p.endpoints), maxEndpoints)
	}
	for _, e := range p.endpoints {
		if len(e.addrs) > maxAddresses {
			return bad("interface %s has %d addresses, at most %d", e.name, len(e.addrs), maxAddresses)
		}
		if len(e.mac) != 6 || e.mac[0]&1 != 0 {
			return bad("interface %s has MAC %v, want a unicast Ethernet address", e.name, e.mac)
		}
		if e.mtu < 68 || e.mtu > 65535 {
			return bad("interface %s has MTU %d, want 68 to 65535", e.name, e.mtu)
		}
	}
	if len(p.routes) > maxRoutes {
		return bad("%d routes, at most %d", len(p.routes), maxRoutes)
	}
	if len(p.neighbors) > maxNeighbors {
		return bad("%d static neighbours, at most %d", len(p.neighbors), maxNeighbors)
	}
	return nil
}

// view is p as sandbox.network shows it.
func (p *podNetwork) view() handler.Network {
	n := handler.Network{Netns: p.netns}
	for _, e := range p.endpoints {
		in := handler.Interface{Name: e.name, MAC: e.mac.String(), MTU: e.mtu, Addresses: []string{}}
		for _, a := range e.addrs {
			in.Addresses = append(in.Addresses, a.String())
		}
		n.Interfaces = append(n.Interfaces, in)
	}
	for _, r := range p.routes {
		n.Routes = append(n.Routes, r.view())
	}
	return n
}

func (r podRoute) view() handler.Route {
	v := handler.Route{Destination: r.dst.String(), Interface: r.dev}
	if r.dst.Bits() == 0 {
		v.Destination = "default"
	}
	if r.gw.IsValid() {
		v.Gateway = r.gw.String()
	}
	return v
}

// keep returns what of p the hooks left in n (a Subset of p.view()): the
// endpoints n names with the addresses it lists, the routes it has, and
// the neighbours of the endpoints kept. A route through an endpoint no
// longer there goes too.
func (p *podNetwork) keep(n handler.Network) *podNetwork {
	out := &podNetwork{netns: p.netns}
	for _, e := range p.endpoints {
		i := slices.IndexFunc(n.Interfaces, func(in handler.Interface) bool { return in.Name == e.name })
		if i < 0 {
			continue
		}
		kept := e
		kept.addrs = nil
		for _, a := range e.addrs {
			if slices.Contains(n.Interfaces[i].Addresses, a.String()) {
				kept.addrs = append(kept.addrs, a)
			}
		}
		out.endpoints = append(out.endpoints, kept)
	}
	j := 0
	for _, r := range p.routes {
		if k := slices.Index(n.Routes[j:], r.view()); k >= 0 {
			j += k + 1
			if n.Kept(r.dev) {
				out.routes = append(out.routes, r)
			}
		}
	}
	for _, nb := range p.neighbors {
		if n.Kept(nb.dev) {
			out.neighbors = append(out.neighbors, nb)
		}
	}
	return out
}

// agentNetwork is p as CreateSandbox gives it to the guest; nil for no
// endpoints (the guest has loopback only).
func (p *podNetwork) agentNetwork() *api.Network {
	if p == nil || len(p.endpoints) == 0 {
		return nil
	}
	n := &api.Network{}
	for _, e := range p.endpoints {
		in := &api.Interface{Mac: slices.Clone(e.mac), Name: e.name, Mtu: uint32(e.mtu)}
		for _, a := range e.addrs {
			in.Addresses = append(in.Addresses, ipAddress(a))
		}
		n.Interfaces = append(n.Interfaces, in)
	}
	for _, r := range p.routes {
		ar := &api.Route{Destination: ipAddress(r.dst), Device: r.dev, Scope: uint32(r.scope)}
		if r.gw.IsValid() {
			ar.Gateway = r.gw.AsSlice()
		}
		if r.src.IsValid() {
			ar.Source = r.src.AsSlice()
		}
		n.Routes = append(n.Routes, ar)
	}
	for _, nb := range p.neighbors {
		n.Neighbors = append(n.Neighbors, &api.Neighbor{Ip: nb.ip.AsSlice(), Mac: slices.Clone(nb.mac), Device: nb.dev})
	}
	return n
}

func ipAddress(p netip.Prefix) *api.IPAddress {
	return &api.IPAddress{Ip: p.Addr().AsSlice(), PrefixLen: uint32(p.Bits())}
}

// tapName is the tap device joined to endpoint i named name: the
// endpoint's name behind "tap<i>_", cut to a link name's 15 bytes (i
// keeps two cut names apart).
func tapName(i int, name string) string {
	s := fmt.Sprintf("tap%d_%s", i, name)
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}
