package builtin

import (
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const hostPathAllowlist = "../host-path-allowlist"

func TestHostPathAllowlist(t *testing.T) {
	p := moduletest.MustLoad(t, hostPathAllowlist, `{"paths":["/srv/data/","/var/log"]}`)
	for mount, reason := range map[string]string{
		`{"destination":"/d","type":"bind","source":"/srv/data","options":["rbind"]}`:            "",
		`{"destination":"/d","type":"none","source":"/srv/data/x/y","options":["rbind","ro"]}`:   "",
		`{"destination":"/d","type":"bind","source":"//srv/./data/../data/z","options":[]}`:      "",
		`{"destination":"/d","type":"bind","source":"/var/log/../../etc","options":[]}`:          "bind mount of host path /var/log/../../etc is not allowed",
		`{"destination":"/d","type":"bind","source":"/srv/database","options":[]}`:               "bind mount of host path /srv/database is not allowed",
		`{"destination":"/d","type":"none","source":"/etc","options":["bind"]}`:                  "bind mount of host path /etc is not allowed",
		`{"destination":"/d","type":"bind","source":"relative","options":[]}`:                    "bind mount of host path relative is not allowed",
		`{"destination":"/d","type":"bind","source":"/srv/data\"\n","options":[]}`:               "bind mount of host path /srv/data\"\n is not allowed",
		`{"destination":"/d","type":"bind","source":"/srv/d\u0061ta/x","options":[]}`:            "",
		`{"destination":"/d","type":"bind","source":null,"options":[]}`:                          "bind mount of host path  is not allowed",
		`{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"]}`:             "",
		`{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}`: "",
	} {
		d := p.Decide(t, "container.mount", `{"version":1,"mount":`+mount+`}`)
		if d.Allow != (reason == "") || d.Denied() != reason {
			t.Errorf("mount %s: %+v, want reason %q", mount, d, reason)
		}
	}
	if d := p.Decide(t, "container.create", `{"version":1,"mount":{"type":"bind","source":"/etc"}}`); !d.Allow {
		t.Errorf("another point denied: %+v", d)
	}
	root := moduletest.MustLoad(t, hostPathAllowlist, `{"paths":["/"]}`)
	if d := root.Decide(t, "container.mount", `{"version":1,"mount":{"type":"bind","source":"/etc/../x","options":[]}}`); !d.Allow {
		t.Errorf("paths [/]: denied %+v", d)
	}
	for cfg, msg := range map[string]string{
		`{"paths":["srv"]}`: "paths: srv is not absolute",
		`{"paths":[""]}`:    "paths:  is not absolute",
		`{"paths":"/srv"}`:  "paths: want a list of absolute directories",
		`{"path":["/srv"]}`: "unknown key path (want paths)",
	} {
		if _, err := moduletest.Load(t, hostPathAllowlist, cfg); !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
