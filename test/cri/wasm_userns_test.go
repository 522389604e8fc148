package cri

import (
	"testing"

	"github.com/huskrt/husk/test/devenv"
)

// TestWasmInUserNamespacedPod runs a Wasm container (its command a module
// from a volume) in a hostUsers: false pod of husk's entry without an
// options table: the module runs as the pod's root, mapped to the pod's
// range on the host, and exec of another module works.
func TestWasmInUserNamespacedPod(t *testing.T) {
	mods := needWasm(t, "spin", "hello")
	handler := devenv.PlainHandler
	if f := runtimeHandlers(t)[handler]; f == nil || !f.UserNamespaces {
		t.Skipf("the CRI says handler %s has no user namespace support on this machine (crictl info)", handler)
	}
	devenv.AllowTraverse(t, mods)
	p := runUsernsPod(t, handler)

	id := p.startWith(t, "wasm", map[string]any{
		"mounts": []map[string]any{{"container_path": "/wasm", "host_path": mods, "readonly": true}},
	}, "/wasm/spin.wasm")
	if out := execSync(t, id, "/wasm/hello.wasm"); out != "hello from wasm\n" {
		t.Errorf("exec of a module in the Wasm container: %q", out)
	}
	if st := inspectContainer(t, id).Status.State; st != "CONTAINER_RUNNING" {
		t.Errorf("Wasm container is %s", st)
	}
	// The runner runs as the pod's root: the range's first ID.
	checkHostUID(t, id)
}
