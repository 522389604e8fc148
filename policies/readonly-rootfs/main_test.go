package main

import (
	"strings"
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name  string
		point string
		event string
		want  string // decision JSON
	}{
		{"rootfs writable", "container.rootfs", `{"version":1,"container":{"id":"c"},"mounts":[],"readonly":false}`,
			`{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":true}]}`},
		{"rootfs already read-only", "container.rootfs", `{"version":1,"container":{"id":"c"},"readonly":true}`,
			`{"allow":true}`},
		{"spec root writable", "container.create", `{"version":1,"spec":{"root":{"path":"rootfs"}}}`,
			`{"allow":true,"patch":[{"op":"add","path":"/spec/root/readonly","value":true}]}`},
		{"spec root explicitly writable", "container.create", `{"version":1,"spec":{"root":{"path":"rootfs","readonly":false}}}`,
			`{"allow":true,"patch":[{"op":"add","path":"/spec/root/readonly","value":true}]}`},
		{"spec root read-only", "container.create", `{"version":1,"spec":{"root":{"path":"rootfs","readonly":true}}}`,
			`{"allow":true}`},
		{"spec without root", "container.create", `{"version":1,"spec":{"process":{}}}`,
			`{"allow":true}`},
		{"other point", "process.exec", `{"version":1,"readonly":false}`, `{"allow":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(decide(sdk.NewEvent(tt.point, []byte(tt.event))).JSON()); got != tt.want {
				t.Errorf("decide = %s\nwant     %s", got, tt.want)
			}
		})
	}
}

func TestExemptImages(t *testing.T) {
	defer func() { exempt = sdk.Set{} }()
	if err := sdk.Configure([]byte(`{"exempt_images":["docker.io/library/postgres"]}`)); err != nil {
		t.Fatal(err)
	}
	ev := func(image string) sdk.Event {
		return sdk.NewEvent("container.rootfs", []byte(`{"version":1,"container":{"id":"c","image":"`+image+`"},"readonly":false}`))
	}
	if d := decide(ev("docker.io/library/postgres:16")); len(d.Ops()) != 0 {
		t.Errorf("exempt image patched: %s", d.JSON())
	}
	if d := decide(ev("docker.io/library/busybox:latest")); len(d.Ops()) != 1 {
		t.Errorf("other image not patched: %s", d.JSON())
	}
	if d := decide(ev("")); len(d.Ops()) != 1 {
		t.Errorf("unknown image not patched: %s", d.JSON())
	}
	for _, cfg := range []string{`{"exempt_images":"x"}`, `{"exempt":["x"]}`} {
		if err := sdk.Configure([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "exempt") {
			t.Errorf("Configure(%s) = %v", cfg, err)
		}
	}
}
