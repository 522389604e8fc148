package devenv

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// CNINetwork is a CRI bench's pod network: a bridge of its own with a /24
// of its own, addresses from host-local, kept under the bench's directory.
// Pods get no default route, so their traffic stays on the bridge (other
// pods of the bench, and the host through the gateway address).
type CNINetwork struct {
	// Name is the CNI network name, unique to the bench.
	Name string
	// Bridge is the Linux bridge the bridge plugin creates on the first
	// pod; its name is unique to the bench and fits IFNAMSIZ.
	Bridge string
	// Subnet is the pods' subnet; Gateway (its .1) is the bridge's address.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// ConfDir holds the network's conflist (the CRI's cni.conf_dir).
	ConfDir string
	// DataDir is host-local's allocation store (instead of /var/lib/cni).
	DataDir string
}

// bridgePrefix starts every bench bridge's name.
const bridgePrefix = "huskbr"

// cniSubnetBase is the private /16 the benches' /24s are carved from.
var cniSubnetBase = netip.MustParseAddr("10.209.0.0")

// newCNINetwork names the network of a bench rooted at dir after seed (a hash
// of dir) and picks a /24 that no route of the host overlaps, starting at
// the seed's, so that benches running side by side get different bridges
// and, almost always, different subnets.
func newCNINetwork(dir string, seed uint32) (CNINetwork, error) {
	tag := fmt.Sprintf("%08x", seed)
	routes, err := hostRoutes()
	if err != nil {
		return CNINetwork{}, err
	}
	base := cniSubnetBase.As4()
	for i := range 256 {
		a := base
		a[2] = byte(int(seed&0xff) + i)
		subnet := netip.PrefixFrom(netip.AddrFrom4(a), 24)
		if overlapsAny(subnet, routes) {
			continue
		}
		a[3] = 1
		return CNINetwork{
			Name:    "husk-" + tag,
			Bridge:  bridgePrefix + tag,
			Subnet:  subnet,
			Gateway: netip.AddrFrom4(a),
			ConfDir: filepath.Join(dir, "cni", "net.d"),
			DataDir: filepath.Join(dir, "cni", "ipam"),
		}, nil
	}
	return CNINetwork{}, fmt.Errorf("devenv: every /24 of %s/16 is routed on this host", cniSubnetBase)
}

// confList renders the network's CNI configuration list. Only the bridge
// plugin is in it: containerd adds its own loopback network, which runs the
// loopback plugin from the same bin_dirs.
func (n CNINetwork) confList() ([]byte, error) {
	type ipam struct {
		Type    string                `json:"type"`
		Ranges  [][]map[string]string `json:"ranges"`
		DataDir string                `json:"dataDir"`
	}
	type bridge struct {
		Type        string `json:"type"`
		Bridge      string `json:"bridge"`
		IsGateway   bool   `json:"isGateway"`
		IPMasq      bool   `json:"ipMasq"`
		HairpinMode bool   `json:"hairpinMode"`
		IPAM        ipam   `json:"ipam"`
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.Name,
		"plugins": []any{bridge{
			Type:      "bridge",
			Bridge:    n.Bridge,
			IsGateway: true,
			IPMasq:    false,
			IPAM: ipam{
				Type:    "host-local",
				Ranges:  [][]map[string]string{{{"subnet": n.Subnet.String(), "gateway": n.Gateway.String()}}},
				DataDir: n.DataDir,
			},
		}},
	}, "", "  ")
}

// writeConfList writes the conflist into ConfDir, where the CRI loads it.
func (n CNINetwork) writeConfList() error {
	b, err := n.confList()
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	if err := os.MkdirAll(n.ConfDir, 0o755); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, "10-"+n.Name+".conflist"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	return nil
}

// hostRoutes returns the destinations of the host's IPv4 routes (main
// table), the default route excepted.
func hostRoutes() ([]netip.Prefix, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	defer f.Close()
	return parseRoutes(f)
}

// parseRoutes parses /proc/net/route: Iface Destination Gateway Flags RefCnt
// Use Metric Mask ..., addresses in hex, in the kernel's byte order.
func parseRoutes(r io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(fields[1], 16, 32)
		mask, err2 := strconv.ParseUint(fields[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		var d, m [4]byte
		binary.NativeEndian.PutUint32(d[:], uint32(dst))
		binary.NativeEndian.PutUint32(m[:], uint32(mask))
		bits := 0
		for _, x := range m {
			for ; x&0x80 != 0; x <<= 1 {
				bits++
			}
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(d), bits).Masked())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("devenv: read routes: %w", err)
	}
	return out, nil
}

func overlapsAny(p netip.Prefix, list []netip.Prefix) bool {
	for _, q := range list {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// cniCacheDir is libcni's cache, where containerd's CNI library keeps each
// attachment's result (results/<network>-<container>-<ifname>) until the
// network is torn down. containerd offers no setting to move it.
const cniCacheDir = "/var/lib/cni"

// removeCNICache removes libcni's cached results for network name and,
// whatever the network (containerd's own loopback network has one too), for
// the sandboxes sandboxIDs. A pod torn down cleanly leaves no result behind.
// The directories stay: another bench's libcni may be about to write there.
func removeCNICache(name string, sandboxIDs []string) error {
	results := filepath.Join(cniCacheDir, "results")
	ents, err := os.ReadDir(results)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	ours := func(file string) bool {
		if strings.HasPrefix(file, name+"-") {
			return true
		}
		for _, id := range sandboxIDs {
			if strings.Contains(file, "-"+id+"-") {
				return true
			}
		}
		return false
	}
	var errs []error
	for _, e := range ents {
		if ours(e.Name()) {
			if err := os.Remove(filepath.Join(results, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("devenv: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// sandboxIDs lists the pod sandboxes the CRI plugin of the bench rooted at
// dir still has on disk (a pod removed cleanly is not among them).
func sandboxIDs(dir string) []string {
	var ids []string
	for _, top := range []string{"root", "state"} {
		ents, _ := os.ReadDir(filepath.Join(dir, top, "io.containerd.grpc.v1.cri", "sandboxes"))
		for _, e := range ents {
			if e.IsDir() && !slices.Contains(ids, e.Name()) {
				ids = append(ids, e.Name())
			}
		}
	}
	return ids
}
