package builtin

import (
	"strings"
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const denyPrivileged = "../deny-privileged"

// createEvent returns a container.create event whose spec is spec.
func createEvent(spec string) string {
	return `{"version":1,"sandbox":{"id":"p"},"container":{"id":"c"},"spec":` + spec + `}`
}

func TestDenyPrivileged(t *testing.T) {
	p := moduletest.MustLoad(t, denyPrivileged, "")
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
		{name: "escaped capability name", spec: `{"process":{"capabilities":{"permitted":["CAP_\u0053YS_BOOT"]}}}`,
			reason: "privileged container: capability CAP_SYS_BOOT in the permitted set"},
		{name: "capabilities not a list", spec: `{"process":{"capabilities":{"bounding":"CAP_SYS_ADMIN"}}}`},
		{name: "allow-all device rule", spec: `{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"access":"rwm"}]}}}`,
			reason: "privileged container: the device cgroup allows every device"},
		{name: "allow-all with type a and wildcards", spec: `{"linux":{"resources":{"devices":[{"allow":true,"type":"a","major":-1,"minor":null,"access":"rwm"}]}}}`,
			reason: "privileged container: the device cgroup allows every device"},
		{name: "allow-all with an empty type", spec: `{"linux":{"resources":{"devices":[{"allow":true,"type":"","access":"rwm"}]}}}`,
			reason: "privileged container: the device cgroup allows every device"},
		{name: "one device allowed", spec: `{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}}}`},
		{name: "all char devices of major 136", spec: `{"linux":{"resources":{"devices":[{"allow":true,"type":"c","major":136,"access":"rwm"}]}}}`},
		{name: "a fractional major is not the wildcard", spec: `{"linux":{"resources":{"devices":[{"allow":true,"major":-1.0,"access":"rwm"}]}}}`},
		{name: "deny-all rule", spec: `{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]}}}`},
		{name: "allow as a string", spec: `{"linux":{"resources":{"devices":[{"allow":"true","access":"rwm"}]}}}`},
		{name: "other points are allowed", point: "process.exec", spec: `{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			point := tt.point
			if point == "" {
				point = "container.create"
			}
			d := p.Decide(t, point, createEvent(tt.spec))
			if d.Allow != (tt.reason == "") || d.Denied() != tt.reason || d.Patch != nil {
				t.Errorf("decide = %+v, want reason %q", d, tt.reason)
			}
		})
	}
}

func TestDenyPrivilegedConfig(t *testing.T) {
	p := moduletest.MustLoad(t, denyPrivileged, `{"capabilities":["CAP_NET_ADMIN"],"allow_all_devices":true}`)
	if d := p.Decide(t, "container.create", createEvent(`{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`)); !d.Allow {
		t.Errorf("SYS_ADMIN denied after capabilities replaced the list: %+v", d)
	}
	if d := p.Decide(t, "container.create", createEvent(`{"process":{"capabilities":{"effective":["CAP_NET_ADMIN"]}}}`)); d.Allow {
		t.Error("NET_ADMIN allowed although configured")
	}
	if d := p.Decide(t, "container.create", createEvent(`{"linux":{"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}`)); !d.Allow {
		t.Errorf("allow-all device rule denied with allow_all_devices: %+v", d)
	}
	for cfg, msg := range map[string]string{
		`{"capabilities":"CAP_SYS_ADMIN"}`: "capabilities: want a list",
		`{"capabilities":[1]}`:             "capabilities: want a list",
		`{"allow_all_devices":"yes"}`:      "allow_all_devices: want true or false",
		`{"capabilites":[]}`:               "unknown key capabilites",
		`{"caps\"\n":[]}`:                  `unknown key caps"\n`,
	} {
		if _, err := moduletest.Load(t, denyPrivileged, cfg); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
