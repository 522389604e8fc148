package main

import (
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	if err := sdk.Configure([]byte(`{"paths":["/srv/data/","/var/log"]}`)); err != nil {
		t.Fatal(err)
	}
	for mount, reason := range map[string]string{
		`{"destination":"/d","type":"bind","source":"/srv/data","options":["rbind"]}`:            "",
		`{"destination":"/d","type":"none","source":"/srv/data/x/y","options":["rbind","ro"]}`:   "",
		`{"destination":"/d","type":"bind","source":"/var/log/../../etc","options":[]}`:          "bind mount of host path /var/log/../../etc is not allowed",
		`{"destination":"/d","type":"bind","source":"/srv/database","options":[]}`:               "bind mount of host path /srv/database is not allowed",
		`{"destination":"/d","type":"none","source":"/etc","options":["bind"]}`:                  "bind mount of host path /etc is not allowed",
		`{"destination":"/d","type":"bind","source":"relative","options":[]}`:                    "bind mount of host path relative is not allowed",
		`{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"]}`:             "",
		`{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}`: "",
	} {
		d := decide(sdk.NewEvent("container.mount", []byte(`{"version":1,"mount":`+mount+`}`)))
		if d.Allowed() != (reason == "") || d.Reason() != reason {
			t.Errorf("mount %s: %s, want reason %q", mount, d.JSON(), reason)
		}
	}
	if err := sdk.Configure([]byte(`{"paths":["srv"]}`)); err == nil {
		t.Error("a relative path accepted")
	}
}
