package main

import (
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	if err := sdk.Configure([]byte(`{"images":["docker.io/library/","registry.example.com/app:"]}`)); err != nil {
		t.Fatal(err)
	}
	// By the image member's JSON.
	for image, reason := range map[string]string{
		`"docker.io/library/nginx:1.27"`:     "",
		`"registry.example.com/app:v2"`:      "",
		`"registry.example.com/app-evil:v2"`: "image registry.example.com/app-evil:v2 is not allowed",
		`"ghcr.io/x/y:latest"`:               "image ghcr.io/x/y:latest is not allowed",
		`null`:                               unknown, // what husk sends for an image it does not know
		`""`:                                 unknown,
		`42`:                                 unknown,
	} {
		d := decide(sdk.NewEvent("container.create", []byte(`{"version":1,"container":{"id":"c","image":`+image+`}}`)))
		if d.Allowed() != (reason == "") || d.Reason() != reason {
			t.Errorf("image %s: %s, want reason %q", image, d.JSON(), reason)
		}
	}
	if d := decide(sdk.NewEvent("container.create", []byte(`{"version":1,"container":{"id":"c"}}`))); d.Allowed() || d.Reason() != unknown {
		t.Errorf("no image member: %s, want reason %q", d.JSON(), unknown)
	}
	if d := decide(sdk.NewEvent("process.exec", []byte(`{"version":1}`))); !d.Allowed() {
		t.Error("another point denied")
	}
	for _, cfg := range []string{`{}`, `{"images":[]}`, `{"images":"x"}`, `{"image":["x"]}`} {
		allowed = sdk.Set{}
		if err := sdk.Configure([]byte(cfg)); err == nil {
			t.Errorf("Configure(%s) accepted", cfg)
		}
	}
}
