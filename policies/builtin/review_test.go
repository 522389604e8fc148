package builtin

// Regression tests from a differential review of the C built-ins against
// the Go ones they replaced (2026-12-08): each failed on the C modules of
// 3e5a205 and passed on the Go modules of 0ec4b9c^/e517ca6^.

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

// TestDenyPrivilegedManyDeviceRules: the allow-all rule is last of many.
// deny-privileged walked devices with husk_elem(devices, i), one json_get
// per element from the array's start: quadratic. 16000 rules (~1 MB of
// spec) passed husk's default 1 s deadline (on_error then decides; with
// on_error = "allow" the privileged container ran); the Go module denied
// in ~0.15 s. moduletest's deadline is 5 s: 40000 rules need ~25 s
// quadratically and well under a second linearly.
func TestDenyPrivilegedManyDeviceRules(t *testing.T) {
	p := moduletest.MustLoad(t, denyPrivileged, "")
	spec := `{"linux":{"resources":{"devices":[` +
		strings.Repeat(`{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"},`, 40000) +
		`{"allow":true,"access":"rwm"}]}}}`
	start := time.Now()
	d := p.Decide(t, "container.create", createEvent(spec))
	if d.Denied() != "privileged container: the device cgroup allows every device" {
		t.Fatalf("decision %+v, want the allow-all rule denied", d)
	}
	t.Logf("40001 device rules decided in %v", time.Since(start))
}

// TestSpaceAroundInput: a module reads JSON with space around it as the Go
// SDK did (husk's encoding has none today; husk.h's husk_root took offset
// 0 as the value's start, so every lookup missed on leading space and
// allowed, and husk_iter_of(root) took the last byte as the closing
// bracket, dropping the last member of a configuration with a trailing
// newline).
func TestSpaceAroundInput(t *testing.T) {
	p := moduletest.MustLoad(t, denyPrivileged, "")
	for _, ev := range []string{" " + createEvent(`{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`),
		"\n\t" + createEvent(`{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`) + "\n"} {
		if d := p.Decide(t, "container.create", ev); d.Allow {
			t.Errorf("event %q allowed, want CAP_SYS_ADMIN denied", ev)
		}
	}
	for _, cfg := range []string{` {"capabilities":["CAP_NET_ADMIN"]}`, `{"capabilities":["CAP_NET_ADMIN"]}` + "\n"} {
		p := moduletest.MustLoad(t, denyPrivileged, cfg)
		ev := createEvent(`{"process":{"capabilities":{"bounding":["CAP_NET_ADMIN"]}}}`)
		if d := p.Decide(t, "container.create", ev); d.Allow {
			t.Errorf("config %q: CAP_NET_ADMIN allowed, want it denied (the configured list)", cfg)
		}
	}
}

// TestLongReasonIsCut: a reason quoting a value of the event is cut at
// husk's 1 KiB (at a character's start, with "…"), so that a long
// argument, path or image name cannot make the decision too large to
// return: that was an error, which on_error = "allow" let through.
func TestLongReasonIsCut(t *testing.T) {
	p := moduletest.MustLoad(t, execAllowlist, `{"commands":["/bin/ls"]}`)
	long := "/bin/" + strings.Repeat("é", 1<<20) // 2 MiB of text
	d := p.Decide(t, "process.exec", `{"version":1,"exec_id":"e","process":{"args":["`+long+`"]}}`)
	r := d.Denied()
	if d.Allow || !strings.HasPrefix(r, `exec of "/bin/éé`) || !strings.HasSuffix(r, "é…") || len(r) > 1024 || !utf8.ValidString(r) {
		t.Errorf("decision allow %v, reason of %d bytes %q…%q: want a deny whose reason is cut to 1 KiB", d.Allow, len(r), r[:min(len(r), 40)], r[max(0, len(r)-20):])
	}
}
