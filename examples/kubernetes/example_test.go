// Package kubernetes_test checks the Kubernetes example files against
// what containerd and husk accept; test/cri runs pods with them through a
// real containerd (TestKubernetesExample).
package kubernetes_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/version"
	"github.com/pelletier/go-toml/v2"

	"github.com/huskrt/husk/runtime/config"
)

// example is the part of containerd's config the example sets.
type example struct {
	Version int `toml:"version"`
	Plugins struct {
		Runtime struct {
			Containerd struct {
				Runtimes map[string]struct {
					RuntimeType string         `toml:"runtime_type"`
					Sandboxer   string         `toml:"sandboxer"`
					Options     map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"io.containerd.cri.v1.runtime"`
	} `toml:"plugins"`
}

// TestContainerdExample: the example is containerd 2.4's config version,
// registers husk's three handlers, names no husk config file (a node
// without /etc/husk/config.toml runs its pods on husk's defaults), and
// each inline husk configuration is one husk accepts, read as the CRI
// hands it over (the options table as TOML, runtime option ConfigBody).
func TestContainerdExample(t *testing.T) {
	b, err := os.ReadFile("containerd-husk.toml")
	if err != nil {
		t.Fatal(err)
	}
	var ex example
	if err := toml.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Version != version.ConfigVersion {
		t.Errorf("version = %d; containerd %s's config version is %d", ex.Version, version.Version, version.ConfigVersion)
	}
	runtimes := ex.Plugins.Runtime.Containerd.Runtimes
	for _, h := range []string{"husk", "husk-wasm", "husk-vm"} {
		rt, ok := runtimes[h]
		if !ok {
			t.Errorf("no runtime handler %s", h)
			continue
		}
		if rt.RuntimeType != "io.containerd.husk.v2" || rt.Sandboxer != "podsandbox" {
			t.Errorf("%s: runtime_type %q, sandboxer %q", h, rt.RuntimeType, rt.Sandboxer)
		}
		if p, ok := rt.Options["ConfigPath"]; ok {
			t.Errorf("%s names husk config file %v: nothing need be there (make install writes one only if absent)", h, p)
		}
		if len(rt.Options) == 0 {
			continue
		}
		var body bytes.Buffer
		if err := toml.NewEncoder(&body).Encode(rt.Options); err != nil {
			t.Fatal(err)
		}
		if _, err := config.LoadInline(h+" options", body.Bytes()); err != nil {
			t.Errorf("%s: husk refuses its inline configuration: %v", h, err)
		}
	}
	if !strings.Contains(string(b), "imports") {
		t.Error("the example does not say how its drop-in relates to containerd's imports")
	}
}
