package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/huskrt/husk/test/devenv"
)

// huskNoHooks is a second runtime: the shim built without the hook engine
// (make build VARIANT=nohooks), beside the full one in the bench's PATH.
const huskNoHooks = "io.containerd.husknohooks.v2"

// TestNoHooksShimRefusesHooks: a shim built without the hook engine runs a
// container whose configuration has no hooks, and refuses, through ctr and
// by the hook's name, one whose configuration has: a policy the operator
// configured is never skipped silently, and nothing is left behind.
func TestNoHooksShimRefusesHooks(t *testing.T) {
	needBench(t)
	if err := devenv.BuildShimVariant(shimDir, "containerd-shim-husknohooks-v2", "husk_nohooks"); err != nil {
		t.Fatal(err)
	}

	id := name(t, "plain")
	cleanupContainer(t, id)
	if out := ctr(t, "run", "--rm", "--runtime", huskNoHooks, "--runtime-config-path", hookConfig(t, "# no hooks\n"), devenv.BusyboxRef, id, "echo", "no-hooks-ran"); !strings.Contains(out, "no-hooks-ran") {
		t.Errorf("a container without hooks printed %q", out)
	}
	requireClean(t, id)

	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "no-privileged"
module = %q
points = ["container.create"]
`, policy(t, "deny-privileged")))
	id = name(t, "hooked")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--runtime", huskNoHooks, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "true")
	for _, want := range []string{`"no-privileged"`, "not in this build"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ctr error lacks %q:\n%s", want, msg)
		}
	}
	requireClean(t, id)
}
