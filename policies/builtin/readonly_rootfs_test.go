package builtin

import (
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const readonlyRootfs = "../readonly-rootfs"

func TestReadonlyRootfs(t *testing.T) {
	p := moduletest.MustLoad(t, readonlyRootfs, "")
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
			if got, err := p.Raw(tt.point, []byte(tt.event)); err != nil || string(got) != tt.want {
				t.Errorf("decide = %s (%v)\nwant     %s", got, err, tt.want)
			}
		})
	}
}

func TestReadonlyRootfsExemptImages(t *testing.T) {
	p := moduletest.MustLoad(t, readonlyRootfs, `{"exempt_images":["docker.io/library/postgres"]}`)
	ev := func(image string) string {
		return `{"version":1,"container":{"id":"c","image":` + image + `},"readonly":false}`
	}
	if d := p.Decide(t, "container.rootfs", ev(`"docker.io/library/postgres:16"`)); d.Patch != nil {
		t.Errorf("exempt image patched: %+v", d)
	}
	for _, image := range []string{`"docker.io/library/busybox:latest"`, `""`, `null`} {
		if d := p.Decide(t, "container.rootfs", ev(image)); d.PatchJSON() != `[{"op":"replace","path":"/readonly","value":true}]` {
			t.Errorf("image %s not patched: %+v", image, d)
		}
	}
	// An empty list exempts nothing.
	none := moduletest.MustLoad(t, readonlyRootfs, `{"exempt_images":[]}`)
	if d := none.Decide(t, "container.rootfs", ev(`"docker.io/library/postgres:16"`)); d.Patch == nil {
		t.Errorf("empty exempt_images: not patched: %+v", d)
	}
	for cfg, msg := range map[string]string{
		`{"exempt_images":"x"}`: "exempt_images: want a list of image name prefixes",
		`{"exempt_images":[1]}`: "exempt_images: want a list of image name prefixes",
		`{"exempt":["x"]}`:      "unknown key exempt (want exempt_images)",
	} {
		if _, err := moduletest.Load(t, readonlyRootfs, cfg); !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
