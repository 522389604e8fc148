package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/huskrt/husk/test/devenv"
)

// TestPolicyCheckSeesLaterChange: the built-in deny-privileged, a
// checking hook (the default kind) at container.create, sees a container's
// spec again when a changing hook at container.cgroups, written after it,
// opens every device to it: ctr run is refused, naming both points, and
// leaves nothing behind. Without the change the same container runs.
func TestPolicyCheckSeesLaterChange(t *testing.T) {
	open := fmt.Sprintf(`
[[hook]]
name = "no-privileged"
module = %q
points = ["container.create"]

[[hook]]
name = "open-devices"
module = %q
points = ["container.cgroups"]
kind = "change"

[hook.config]
allow = true
patch = [{op = "add", path = "/resources/devices/-", value = {allow = true, access = "rwm"}}]
`, policy(t, "deny-privileged"), decisionModule(t))
	cfg := hookConfig(t, open)
	id := name(t, "")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, id, "true")
	want := `hook "no-privileged" denied container.create (as changed at container.cgroups): privileged container: the device cgroup allows every device`
	if !strings.Contains(msg, want) {
		t.Fatalf("ctr error lacks %q:\n%s", want, msg)
	}
	requireClean(t, id)

	// A changing hook at the same point that leaves the devices alone: the
	// container runs, with deny-privileged asked again and allowing it.
	cfg = hookConfig(t, strings.Replace(open, `value = {allow = true, access = "rwm"}`, `value = {allow = false, access = "rwm"}`, 1))
	ok := name(t, "ok")
	cleanupContainer(t, ok)
	if out := ctr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, ok, "echo", "allowed"); out != "allowed\n" {
		t.Fatalf("run with a harmless change = %q", out)
	}
}
