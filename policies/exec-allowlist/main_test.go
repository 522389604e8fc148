package main

import (
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	if err := sdk.Configure([]byte(`{"commands":["/bin/ls","ps"]}`)); err != nil {
		t.Fatal(err)
	}
	for args, reason := range map[string]string{
		`["/bin/ls","-l"]`: "",
		`["ps"]`:           "",
		`["/bin/sh"]`:      `exec of "/bin/sh" is not on the allow-list`,
		`[]`:               `exec of "" is not on the allow-list`,
	} {
		d := decide(sdk.NewEvent("process.exec", []byte(`{"version":1,"exec_id":"e","process":{"args":`+args+`}}`)))
		if d.Allowed() != (reason == "") || d.Reason() != reason {
			t.Errorf("args %s: %s, want reason %q", args, d.JSON(), reason)
		}
	}
	if d := decide(sdk.NewEvent("container.start", []byte(`{"version":1,"process":{"args":["/bin/sh"]}}`))); !d.Allowed() {
		t.Error("container.start denied")
	}
	if err := sdk.Configure([]byte(`{"command":["ls"]}`)); err == nil {
		t.Error("unknown key accepted")
	}
}
