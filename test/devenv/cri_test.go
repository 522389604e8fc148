package devenv

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// needCRITools skips t unless crictl and the CNI plugins are installed.
func needCRITools(t *testing.T, bin string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(bin, "crictl")); err != nil {
		t.Skipf("no crictl in %s (run hack/install-tools.sh): %v", bin, err)
	}
	if _, err := os.Stat(filepath.Join(CNIBinDir, "bridge")); err != nil {
		t.Skipf("no CNI plugins in %s (apt-get install containernetworking-plugins): %v", CNIBinDir, err)
	}
}

// lookup returns the value at the dotted path keys of a decoded TOML tree.
func lookup(tree map[string]any, keys ...string) (any, bool) {
	var v any = tree
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestCRIConfigKeys pins the CRI configuration to containerd v2.4.2's config
// version 3 keys: a misspelt key is ignored by containerd, silently.
func TestCRIConfigKeys(t *testing.T) {
	dir := "/tmp/bench"
	net, err := newCNINetwork(dir, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	base, err := configTOML(dir, "info", withoutCRIPlugins(disabledPlugins))
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := toml.Unmarshal([]byte(base+criTOML(dir, net, "/etc/husk/x.toml", "/opt/guest")), &tree); err != nil {
		t.Fatalf("config is not TOML: %v", err)
	}
	const (
		images  = "io.containerd.cri.v1.images"
		runtime = "io.containerd.cri.v1.runtime"
		server  = "io.containerd.grpc.v1.cri"
	)
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"plugins", images, "pinned_images", "sandbox"}, PauseRef},
		{[]string{"plugins", images, "registry", "config_path"}, dir + "/certs.d"},
		{[]string{"plugins", runtime, "enable_selinux"}, false},
		{[]string{"plugins", runtime, "netns_mounts_under_state_dir"}, true},
		{[]string{"plugins", runtime, "restrict_oom_score_adj"}, true},
		{[]string{"plugins", runtime, "cni", "bin_dirs"}, []any{CNIBinDir}},
		{[]string{"plugins", runtime, "cni", "conf_dir"}, net.ConfDir},
		{[]string{"plugins", runtime, "containerd", "default_runtime_name"}, "runc"},
		{[]string{"plugins", runtime, "containerd", "runtimes", "runc", "runtime_type"}, "io.containerd.runc.v2"},
		{[]string{"plugins", runtime, "containerd", "runtimes", "runc", "sandboxer"}, "podsandbox"},
		{[]string{"plugins", runtime, "containerd", "runtimes", "runc", "options", "SystemdCgroup"}, false},
		{[]string{"plugins", runtime, "containerd", "runtimes", "husk", "runtime_type"}, "io.containerd.husk.v2"},
		{[]string{"plugins", runtime, "containerd", "runtimes", "husk", "sandboxer"}, "podsandbox"},
		{[]string{"plugins", runtime, "containerd", "runtimes", InlineHandler, "runtime_type"}, "io.containerd.husk.v2"},
		{[]string{"plugins", runtime, "containerd", "runtimes", InlineHandler, "options", "runtime", "state_dir"}, InlineStateDir(dir)},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "runtime_type"}, "io.containerd.husk.v2"},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "sandboxer"}, "podsandbox"},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "options", "runtime", "default_handler"}, "virt"},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "options", "runtime", "state_dir"}, VirtStateDir(dir)},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "options", "virt", "hypervisor"}, "qemu"},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "options", "virt", "guest_image"}, "/opt/guest"},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "options", "virt", "boot_timeout"}, VirtBootTimeout},
		{[]string{"plugins", runtime, "containerd", "runtimes", VirtHandler, "options", "virt", "agent_timeout"}, VirtAgentTimeout},
		{[]string{"plugins", server, "stream_server_address"}, "127.0.0.1"},
		{[]string{"plugins", server, "stream_server_port"}, "0"},
		{[]string{"plugins", server, "disable_tcp_service"}, true},
	} {
		got, ok := lookup(tree, c.path...)
		if !ok {
			t.Errorf("%s: missing", strings.Join(c.path, "."))
			continue
		}
		if gb, _ := json.Marshal(got); string(gb) != func() string { wb, _ := json.Marshal(c.want); return string(wb) }() {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	disabled, _ := lookup(tree, "disabled_plugins")
	for _, p := range criPlugins {
		if slices.Contains(disabled.([]any), any(p)) {
			t.Errorf("CRI plugin %s disabled in a CRI bench", p)
		}
	}
}

func TestCNINetworkIsTheBenchsOwn(t *testing.T) {
	a, err := newCNINetwork("/tmp/a", 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newCNINetwork("/tmp/b", 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Bridge) > 15 { // IFNAMSIZ - 1
		t.Errorf("bridge name %q is longer than an interface name may be", a.Bridge)
	}
	if a.Bridge == b.Bridge || a.Name == b.Name || a.Subnet == b.Subnet {
		t.Errorf("two benches share a bridge, name or subnet: %+v %+v", a, b)
	}
	if !a.Subnet.Addr().IsPrivate() || a.Subnet.Bits() != 24 || !a.Subnet.Contains(a.Gateway) {
		t.Errorf("subnet %s, gateway %s", a.Subnet, a.Gateway)
	}
	for _, d := range []string{a.ConfDir, a.DataDir} {
		if !strings.HasPrefix(d, "/tmp/a/") {
			t.Errorf("%s is not under the bench", d)
		}
	}

	raw, err := a.confList()
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type      string `json:"type"`
			Bridge    string `json:"bridge"`
			IsGateway bool   `json:"isGateway"`
			IPMasq    bool   `json:"ipMasq"`
			IPAM      struct {
				Type    string                `json:"type"`
				DataDir string                `json:"dataDir"`
				Ranges  [][]map[string]string `json:"ranges"`
				Routes  []any                 `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Plugins) != 1 {
		t.Fatalf("conflist plugins: %s", raw)
	}
	br := conf.Plugins[0]
	if conf.Name != a.Name || br.Type != "bridge" || br.Bridge != a.Bridge || !br.IsGateway || br.IPMasq ||
		br.IPAM.Type != "host-local" || br.IPAM.DataDir != a.DataDir || br.IPAM.Ranges[0][0]["subnet"] != a.Subnet.String() ||
		len(br.IPAM.Routes) != 0 {
		t.Errorf("conflist:\n%s", raw)
	}
}

func TestNewCNINetworkAvoidsRoutedSubnets(t *testing.T) {
	routes, err := hostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint32(256) {
		n, err := newCNINetwork("/tmp/x", seed)
		if err != nil {
			t.Fatal(err)
		}
		if overlapsAny(n.Subnet, routes) {
			t.Fatalf("seed %d: subnet %s overlaps a route of the host (%v)", seed, n.Subnet, routes)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the table below is a little-endian host's")
	}
	const table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"br0\t0000D10A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
	f := filepath.Join(t.TempDir(), "route")
	if err := os.WriteFile(f, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := parseRoutes(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.209.0.0/16")}
	if !slices.Equal(got, want) {
		t.Errorf("parseRoutes = %v, want %v (little-endian host)", got, want)
	}
}

// TestCRIBenchStopLeavesNothing runs a pod on a CRI bench and stops the bench
// under it: the bridge, the veth, the network namespace, libcni's cache, the
// mounts, the shims and the directory must all be gone, and IPv4 forwarding
// back as it was.
func TestCRIBenchStopLeavesNothing(t *testing.T) {
	bin := toolsBin(t)
	needCRITools(t, bin)
	forward, _ := os.ReadFile(ipForwardPath)
	c := startBench(t, Options{CRI: true})
	ctx := t.Context()
	n := c.CNI()
	if n == nil {
		t.Fatal("CRI bench without a CNI network")
	}

	out, _, err := c.Crictl(ctx, "images", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.Fields(out)) != 1 {
		t.Errorf("a fresh CRI bench has images %q, want the pause image alone", out)
	}
	pod := filepath.Join(c.Dir, "pod.json")
	if err := os.WriteFile(pod, []byte(`{"metadata":{"name":"stop","namespace":"devenv","uid":"stop-1"},`+
		`"log_directory":"`+filepath.Join(c.Dir, "logs")+`","linux":{"security_context":{"namespace_options":{"pid":1}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	id, _, err := c.Crictl(ctx, "runp", pod)
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)
	t.Logf("runp took %s", time.Since(t0).Round(time.Millisecond))

	if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge)); err != nil {
		t.Fatalf("bridge %s missing with a pod running: %v", n.Bridge, err)
	}
	ns := listNames(c.NetNSDir())
	if len(ns) != 1 {
		t.Fatalf("netns dir %s holds %v, want the pod's", c.NetNSDir(), ns)
	}
	if len(cniResults(id)) == 0 {
		t.Fatalf("no libcni result for pod %s; the test proves nothing", id)
	}
	pid, addr := c.Pid(), c.Address()

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bridge %s left after Stop (%v)", n.Bridge, err)
	}
	if r := cniResults(id); len(r) > 0 {
		t.Errorf("libcni results left: %v", r)
	}
	if m, err := mountsUnder(c.Dir); err != nil || len(m) > 0 {
		t.Errorf("still mounted after Stop: %v (%v)", m, err)
	}
	if pids := shimPids(addr); len(pids) > 0 {
		t.Errorf("shims still running after Stop: %v", pids)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("containerd pid %d still exists after Stop (%v)", pid, err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Stop (%v)", c.Dir, err)
	}
	others, _ := linksWithPrefix(bridgePrefix)
	if now, _ := os.ReadFile(ipForwardPath); len(others) == 0 && string(now) != string(forward) {
		t.Errorf("ip_forward %q after Stop, was %q", now, forward)
	}
}

func listNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// cniResults returns libcni's cached results naming container id.
func cniResults(id string) []string {
	var out []string
	for _, f := range listNames(filepath.Join(cniCacheDir, "results")) {
		if strings.Contains(f, id) {
			out = append(out, f)
		}
	}
	return out
}

func TestDeleteLinkOfNoLinkIsNoError(t *testing.T) {
	if err := deleteLink("huskbr-nothere"); err != nil {
		t.Fatal(err)
	}
}
