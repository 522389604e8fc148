package builtin

import (
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const execAllowlist = "../exec-allowlist"

func TestExecAllowlist(t *testing.T) {
	p := moduletest.MustLoad(t, execAllowlist, `{"commands":["/bin/ls","ps"]}`)
	for args, reason := range map[string]string{
		`["/bin/ls","-l"]`: "",
		`["ps"]`:           "",
		`["/bin/sh"]`:      `exec of "/bin/sh" is not on the allow-list`,
		`["/bin/sh\n"]`:    "exec of \"/bin/sh\n\" is not on the allow-list",
		`[]`:               `exec of "" is not on the allow-list`,
		`[7]`:              `exec of "" is not on the allow-list`,
		`"ps"`:             `exec of "" is not on the allow-list`,
	} {
		d := p.Decide(t, "process.exec", `{"version":1,"exec_id":"e","process":{"args":`+args+`}}`)
		if d.Allow != (reason == "") || d.Denied() != reason {
			t.Errorf("args %s: %+v, want reason %q", args, d, reason)
		}
	}
	if d := p.Decide(t, "container.start", `{"version":1,"process":{"args":["/bin/sh"]}}`); !d.Allow {
		t.Error("container.start denied")
	}
	// No list, or an empty one: every exec is denied.
	for _, cfg := range []string{"", `{"commands":[]}`} {
		none := moduletest.MustLoad(t, execAllowlist, cfg)
		if d := none.Decide(t, "process.exec", `{"version":1,"exec_id":"e","process":{"args":["ps"]}}`); d.Allow {
			t.Errorf("config %q: exec allowed", cfg)
		}
	}
	for cfg, msg := range map[string]string{
		`{"command":["ls"]}`: "unknown key command (want commands)",
		`{"commands":"ls"}`:  "commands: want a list of programs",
	} {
		if _, err := moduletest.Load(t, execAllowlist, cfg); !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
