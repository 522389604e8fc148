package handler

import "slices"

// Network is a pod's network as sandbox.network shows it: what the CNI
// plugins left in the pod's network namespace.
type Network struct {
	// Netns is the namespace's path.
	Netns      string
	Interfaces []Interface
	Routes     []Route
}

// Interface is one interface of the pod's namespace.
type Interface struct {
	Name string
	MAC  string // 01:23:45:67:89:ab
	MTU  int
	// Addresses are CIDRs (10.88.0.5/16).
	Addresses []string
}

// Route is a route of the pod's main table.
type Route struct {
	// Destination is a CIDR, or "default" for a default route.
	Destination string
	Gateway     string // "" for an on-link route
	Interface   string
}

// Subset is what of n the hooks left in got, which may only have removed
// elements (sandbox.network's rule): n's interfaces that got still names,
// with those of their addresses it still lists, and n's routes that got
// still has, in order. Whatever else got holds (a changed name, a new
// route, a removed MAC) is ignored: a hook can take away, never add or
// change.
func (n *Network) Subset(got *Network) Network {
	out := Network{Netns: n.Netns}
	for _, in := range n.Interfaces {
		i := slices.IndexFunc(got.Interfaces, func(g Interface) bool { return g.Name == in.Name })
		if i < 0 {
			continue
		}
		kept := in
		kept.Addresses = nil
		for _, a := range in.Addresses {
			if slices.Contains(got.Interfaces[i].Addresses, a) {
				kept.Addresses = append(kept.Addresses, a)
			}
		}
		out.Interfaces = append(out.Interfaces, kept)
	}
	// got's routes are n's in order with some removed: match them in
	// order, so that of two equal routes the right number stays; what
	// matches none of n's is skipped.
	j := 0
	for _, r := range n.Routes {
		if k := slices.Index(got.Routes[j:], r); k >= 0 {
			out.Routes = append(out.Routes, r)
			j += k + 1
		}
	}
	return out
}

// Kept says whether the interface named name is in n.
func (n *Network) Kept(name string) bool {
	return slices.ContainsFunc(n.Interfaces, func(i Interface) bool { return i.Name == name })
}
