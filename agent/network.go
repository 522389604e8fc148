package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

// Bounds of CreateSandboxRequest.network (agent.proto).
const (
	maxInterfaces = 16
	maxAddresses  = 64
	maxRoutes     = 256
	maxNeighbors  = 1024
	maxLinkName   = 15
	// nicWait bounds how long the agent waits for the host's NICs to
	// appear (virtio_net probes them as it loads, at boot).
	nicWait = 10 * time.Second
)

// checkNetwork refuses a network outside agent.proto's bounds: each
// interface a unicast MAC, a name of 1 to 15 bytes without '/', ':' or
// whitespace, an MTU of 68 to 65535 and at most 64 addresses of 4 or 16
// bytes with a prefix that fits; names and MACs unique; routes and
// neighbours on those interfaces, each address of one family. Errors wrap
// errdefs.ErrInvalidArgument. A nil network is loopback only.
func checkNetwork(n *api.Network) error {
	if n == nil {
		return nil
	}
	bad := func(f string, a ...any) error {
		return fmt.Errorf("network: %s: %w", fmt.Sprintf(f, a...), errdefs.ErrInvalidArgument)
	}
	if len(n.Interfaces) > maxInterfaces || len(n.Routes) > maxRoutes || len(n.Neighbors) > maxNeighbors {
		return bad("%d interfaces, %d routes, %d neighbours: at most %d, %d, %d",
			len(n.Interfaces), len(n.Routes), len(n.Neighbors), maxInterfaces, maxRoutes, maxNeighbors)
	}
	names := map[string]bool{}
	macs := map[string]bool{}
	for i, in := range n.Interfaces {
		if in == nil {
			return bad("interface %d is empty", i)
		}
		if err := checkLinkName(in.Name); err != nil {
			return bad("interface %d: %v", i, err)
		}
		if len(in.Mac) != 6 || in.Mac[0]&1 != 0 {
			return bad("interface %s: MAC %x is not a unicast Ethernet address", in.Name, in.Mac)
		}
		if names[in.Name] || macs[string(in.Mac)] {
			return bad("interface %s: its name or MAC is another's", in.Name)
		}
		names[in.Name], macs[string(in.Mac)] = true, true
		if in.Mtu < 68 || in.Mtu > 65535 {
			return bad("interface %s: MTU %d, want 68 to 65535", in.Name, in.Mtu)
		}
		if len(in.Addresses) > maxAddresses {
			return bad("interface %s: %d addresses, at most %d", in.Name, len(in.Addresses), maxAddresses)
		}
		for _, a := range in.Addresses {
			if err := checkIPAddress(a); err != nil {
				return bad("interface %s: address: %v", in.Name, err)
			}
		}
	}
	for i, r := range n.Routes {
		if r == nil || r.Destination == nil {
			return bad("route %d has no destination", i)
		}
		if err := checkIPAddress(r.Destination); err != nil {
			return bad("route %d: destination: %v", i, err)
		}
		fam := len(r.Destination.Ip)
		if len(r.Gateway) != 0 && len(r.Gateway) != fam || len(r.Source) != 0 && len(r.Source) != fam {
			return bad("route %d: gateway and source must be empty or of the destination's family", i)
		}
		if !names[r.Device] {
			return bad("route %d: device %q is none of the interfaces", i, r.Device)
		}
		if r.Scope != unix.RT_SCOPE_UNIVERSE && r.Scope != unix.RT_SCOPE_LINK && r.Scope != unix.RT_SCOPE_HOST {
			return bad("route %d: scope %d, want 0, 253 or 254", i, r.Scope)
		}
	}
	for i, nb := range n.Neighbors {
		if nb == nil || len(nb.Ip) != 4 && len(nb.Ip) != 16 || len(nb.Mac) != 6 {
			return bad("neighbour %d: want a 4- or 16-byte address and a 6-byte MAC", i)
		}
		if !names[nb.Device] {
			return bad("neighbour %d: device %q is none of the interfaces", i, nb.Device)
		}
	}
	return nil
}

// checkLinkName accepts what the kernel accepts as a new link's name,
// except the loopback's.
func checkLinkName(s string) error {
	if s == "" || len(s) > maxLinkName || s == "." || s == ".." || s == "lo" || !utf8.ValidString(s) ||
		strings.ContainsAny(s, "/:") || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("name %q: want 1 to %d bytes without '/', ':' or spaces, not lo", s, maxLinkName)
	}
	return nil
}

func checkIPAddress(a *api.IPAddress) error {
	if a == nil {
		return errors.New("empty")
	}
	switch {
	case len(a.Ip) == 4 && a.PrefixLen <= 32, len(a.Ip) == 16 && a.PrefixLen <= 128:
		return nil
	}
	return fmt.Errorf("%d bytes with prefix length %d, want 4 bytes and /0 to /32 or 16 and /0 to /128", len(a.Ip), a.PrefixLen)
}

// configureNetwork gives the links of h's namespace the pod's network, n
// (checked by checkNetwork): loopback up; each interface's link found by
// its MAC (waiting up to wait for it to appear), renamed, its MTU set, up,
// its addresses added; then the routes in order, then the neighbours.
func configureNetwork(ctx context.Context, h *netlink.Handle, n *api.Network, wait time.Duration) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if n == nil || len(n.Interfaces) == 0 {
		return nil
	}
	links, err := findLinks(ctx, h, n.Interfaces, wait)
	if err != nil {
		return err
	}
	// Renamed in two steps: one link's new name may be another's old one.
	for i, l := range links {
		if l.Attrs().Name == n.Interfaces[i].Name {
			continue
		}
		if err := h.LinkSetDown(l); err != nil {
			return fmt.Errorf("link %s down: %w", l.Attrs().Name, err)
		}
		if err := h.LinkSetName(l, fmt.Sprintf("husk%dtmp", i)); err != nil {
			return fmt.Errorf("renaming link %s: %w", l.Attrs().Name, err)
		}
	}
	byName := map[string]netlink.Link{}
	for i, in := range n.Interfaces {
		l := links[i]
		if l.Attrs().Name != in.Name {
			if err := h.LinkSetName(l, in.Name); err != nil {
				return fmt.Errorf("naming link %s %s: %w", in.Mac, in.Name, err)
			}
		}
		if err := h.LinkSetMTU(l, int(in.Mtu)); err != nil {
			return fmt.Errorf("link %s: MTU %d: %w", in.Name, in.Mtu, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("link %s up: %w", in.Name, err)
		}
		for _, a := range in.Addresses {
			addr := &netlink.Addr{IPNet: ipNet(a)}
			if len(a.Ip) == 16 {
				addr.Flags = unix.IFA_F_NODAD // the host's namespace did DAD already
			}
			if err := h.AddrAdd(l, addr); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("link %s: address %v: %w", in.Name, addr.IPNet, err)
			}
		}
		byName[in.Name] = l
	}
	for _, r := range n.Routes {
		nr := &netlink.Route{LinkIndex: byName[r.Device].Attrs().Index, Dst: ipNet(r.Destination), Scope: netlink.Scope(r.Scope)}
		if len(r.Gateway) != 0 {
			nr.Gw = net.IP(r.Gateway)
		}
		if len(r.Source) != 0 {
			nr.Src = net.IP(r.Source)
		}
		if err := h.RouteAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("route to %v via %v on %s: %w", nr.Dst, nr.Gw, r.Device, err)
		}
	}
	for _, nb := range n.Neighbors {
		fam := netlink.FAMILY_V4
		if len(nb.Ip) == 16 {
			fam = netlink.FAMILY_V6
		}
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: byName[nb.Device].Attrs().Index, Family: fam,
			State: netlink.NUD_PERMANENT, IP: net.IP(nb.Ip), HardwareAddr: net.HardwareAddr(nb.Mac)}); err != nil {
			return fmt.Errorf("neighbour %v on %s: %w", net.IP(nb.Ip), nb.Device, err)
		}
	}
	return nil
}

// findLinks returns the link of each interface, found by MAC, waiting up
// to wait for all to appear.
func findLinks(ctx context.Context, h *netlink.Handle, ins []*api.Interface, wait time.Duration) ([]netlink.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		all, err := h.LinkList()
		if err != nil {
			return nil, fmt.Errorf("listing links: %w", err)
		}
		links := make([]netlink.Link, len(ins))
		missing := ""
		for i, in := range ins {
			for _, l := range all {
				if string(l.Attrs().HardwareAddr) != string(in.Mac) {
					continue
				}
				if links[i] != nil {
					return nil, fmt.Errorf("two links have MAC %s: %w", net.HardwareAddr(in.Mac), errdefs.ErrFailedPrecondition)
				}
				links[i] = l
			}
			if links[i] == nil && missing == "" {
				missing = net.HardwareAddr(in.Mac).String()
			}
		}
		if missing == "" {
			return links, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no link with MAC %s appeared within %v: %w", missing, wait, errdefs.ErrNotFound)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the link with MAC %s: %w", missing, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ipNet(a *api.IPAddress) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.Ip), Mask: net.CIDRMask(int(a.PrefixLen), 8*len(a.Ip))}
}

// guestNetwork configures n in the guest's namespace (the agent's own).
func guestNetwork(ctx context.Context, n *api.Network) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	if err := configureNetwork(ctx, h, n, nicWait); err != nil {
		return fmt.Errorf("the pod's network: %w", err)
	}
	return nil
}
