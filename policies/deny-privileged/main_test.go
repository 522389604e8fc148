package main

import (
	"strings"
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

// event returns a container.create event whose spec is spec.
func event(spec string) sdk.Event {
	return sdk.NewEvent("container.create", []byte(`{"version":1,"sandbox":{"id":"p"},"container":{"id":"c"},"spec":`+spec+`}`))
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		point  string
		spec   string
		reason string // empty: allowed
	}{
		{name: "default capabilities", spec: `{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],"effective":["CAP_CHOWN"]}}}`},
		{name: "no process", spec: `{}`},
		{name: "null spec", spec: `null`},
		{name: "SYS_ADMIN in bounding", spec: `{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_ADMIN"]}}}`,
			reason: "privileged container: capability CAP_SYS_ADMIN in the bounding set"},
		{name: "SYS_MODULE in ambient", spec: `{"process":{"capabilities":{"ambient":["CAP_SYS_MODULE"]}}}`,
			reason: "privileged container: capability CAP_SYS_MODULE in the ambient set"},
		{name: "allow-all device rule", spec: `{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"access":"rwm"}]}}}`,
			reason: "privileged container: the device cgroup allows every device"},
		{name: "allow-all with type a and wildcards", spec: `{"linux":{"resources":{"devices":[{"allow":true,"type":"a","major":-1,"minor":null,"access":"rwm"}]}}}`,
			reason: "privileged container: the device cgroup allows every device"},
		{name: "one device allowed", spec: `{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}}}`},
		{name: "all char devices of major 136", spec: `{"linux":{"resources":{"devices":[{"allow":true,"type":"c","major":136,"access":"rwm"}]}}}`},
		{name: "deny-all rule", spec: `{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]}}}`},
		{name: "other points are allowed", point: "process.exec", spec: `{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event(tt.spec)
			if tt.point != "" {
				ev = sdk.NewEvent(tt.point, ev.Raw())
			}
			d := decide(ev)
			if d.Allowed() != (tt.reason == "") || d.Reason() != tt.reason {
				t.Errorf("decide = %s, want reason %q", d.JSON(), tt.reason)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	defer func(d sdk.Set, a bool) { denied, allowAllDevices = d, a }(denied, allowAllDevices)

	if err := sdk.Configure([]byte(`{"capabilities":["CAP_NET_ADMIN"],"allow_all_devices":true}`)); err != nil {
		t.Fatal(err)
	}
	if d := decide(event(`{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`)); !d.Allowed() {
		t.Errorf("SYS_ADMIN denied after capabilities replaced the list: %s", d.JSON())
	}
	if d := decide(event(`{"process":{"capabilities":{"effective":["CAP_NET_ADMIN"]}}}`)); d.Allowed() {
		t.Error("NET_ADMIN allowed although configured")
	}
	if d := decide(event(`{"linux":{"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}`)); !d.Allowed() {
		t.Errorf("allow-all device rule denied with allow_all_devices: %s", d.JSON())
	}
	for cfg, msg := range map[string]string{
		`{"capabilities":"CAP_SYS_ADMIN"}`: "capabilities: want a list",
		`{"capabilities":[1]}`:             "capabilities: want a list",
		`{"allow_all_devices":"yes"}`:      "allow_all_devices: want true or false",
		`{"capabilites":[]}`:               "unknown key capabilites",
	} {
		if err := sdk.Configure([]byte(cfg)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Configure(%s) = %v, want an error with %q", cfg, err, msg)
		}
	}
}
