package nested

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/huskrt/husk/runtime/config"
)

// TestCRIContainerdTOML: the outer guest's containerd configuration with
// the CRI is valid TOML, disables none of the CRI's plugins (and still
// the others), and has the VM handler on husk's own configuration file,
// more husk handlers on theirs, and runc's handler only when asked for.
func TestCRIContainerdTOML(t *testing.T) {
	for _, runc := range []bool{false, true} {
		var c struct {
			DisabledPlugins []string `toml:"disabled_plugins"`
			Plugins         struct {
				Runtime struct {
					CNI struct {
						BinDirs []string `toml:"bin_dirs"`
						ConfDir string   `toml:"conf_dir"`
					} `toml:"cni"`
					Containerd struct {
						Default  string `toml:"default_runtime_name"`
						Runtimes map[string]struct {
							Type      string         `toml:"runtime_type"`
							Sandboxer string         `toml:"sandboxer"`
							Options   map[string]any `toml:"options"`
						} `toml:"runtimes"`
					} `toml:"containerd"`
				} `toml:"io.containerd.cri.v1.runtime"`
				Images struct {
					Pinned map[string]string `toml:"pinned_images"`
				} `toml:"io.containerd.cri.v1.images"`
			} `toml:"plugins"`
		}
		cri := &CRIConfig{Handlers: map[string]string{"husk-vm-qemu": "x"}}
		if runc {
			cri.Runc = "/bin/runc"
		}
		if err := toml.Unmarshal([]byte(criContainerdTOML(cri)), &c); err != nil {
			t.Fatalf("runc %v: %v", runc, err)
		}
		for _, p := range criContainerdPlugins {
			if slices.Contains(c.DisabledPlugins, p) {
				t.Errorf("runc %v: %s still disabled", runc, p)
			}
		}
		if !slices.Contains(c.DisabledPlugins, "io.containerd.nri.v1.nri") || len(c.DisabledPlugins) == 0 {
			t.Errorf("runc %v: the other plugins are no longer disabled: %v", runc, c.DisabledPlugins)
		}
		rt := c.Plugins.Runtime.Containerd.Runtimes
		vm, ok := rt[CRIVMHandler]
		if !ok || vm.Type != "io.containerd.husk.v2" || vm.Sandboxer != "podsandbox" || vm.Options["ConfigPath"] != "/etc/husk/cri-vm.toml" {
			t.Errorf("runc %v: handler %s is %+v", runc, CRIVMHandler, vm)
		}
		if q := rt["husk-vm-qemu"]; q.Type != "io.containerd.husk.v2" || q.Options["ConfigPath"] != "/etc/husk/cri-husk-vm-qemu.toml" {
			t.Errorf("runc %v: handler husk-vm-qemu is %+v", runc, q)
		}
		if _, ok := rt["runc"]; ok != runc {
			t.Errorf("runc %v: a runc handler: %v", runc, ok)
		}
		if c.Plugins.Runtime.Containerd.Default != CRIVMHandler || c.Plugins.Images.Pinned["sandbox"] == "" ||
			!slices.Equal(c.Plugins.Runtime.CNI.BinDirs, []string{"/usr/lib/cni"}) || c.Plugins.Runtime.CNI.ConfDir != "/etc/cni/net.d" {
			t.Errorf("runc %v: %+v", runc, c.Plugins)
		}
	}
}

// TestCRIVMHuskConfig: the VM handler's husk configuration loads, with
// the VM handler as its default on husk's own VMM.
func TestCRIVMHuskConfig(t *testing.T) {
	c, err := config.LoadInline("cri-vm.toml", []byte(CRIVMHuskConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime.DefaultHandler != config.HandlerVirt || c.Virt.Hypervisor != "builtin" || c.Virt.GuestImage != "/var/cache/husk/guest" {
		t.Errorf("default handler %q, hypervisor %q, guest image %q", c.Runtime.DefaultHandler, c.Virt.Hypervisor, c.Virt.GuestImage)
	}
}

// TestCRIConfList: the CNI network is valid JSON, the bridge plugin with
// host-local addresses of CRISubnet.
func TestCRIConfList(t *testing.T) {
	var l struct {
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(criConfList), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Plugins) != 1 || l.Plugins[0].Type != "bridge" || l.Plugins[0].IPAM.Type != "host-local" ||
		l.Plugins[0].IPAM.Ranges[0][0]["subnet"] != CRISubnet || !strings.HasPrefix(CRISubnet, criPrefix) {
		t.Errorf("conflist %+v", l)
	}
}
