//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/policies/sdk"
	"github.com/huskrt/husk/runtime/config"
)

// TestUnknownImageIsNull: a container whose image husk does not know has
// "image": null in its events, never "" and never a missing member; a
// known one is its name. Both decode back, and nothing but a string or
// null is an image.
func TestUnknownImageIsNull(t *testing.T) {
	for _, tt := range []struct {
		image hooks.NullString
		want  string
	}{
		{"", `{"id":"c1","image":null}`},
		{"husk.local/busybox:latest", `{"id":"c1","image":"husk.local/busybox:latest"}`},
	} {
		b, err := json.Marshal(hooks.Container{ID: "c1", Image: tt.image})
		if err != nil || string(b) != tt.want {
			t.Errorf("Container with image %q encodes as %s, %v; want %s", tt.image, b, err, tt.want)
		}
		var back hooks.Container
		if err := json.Unmarshal(b, &back); err != nil || back.Image != tt.image {
			t.Errorf("%s decodes to image %q, %v", b, back.Image, err)
		}
		// What a Go policy reads.
		v := sdk.ParseValue(b).At("/image")
		name, isString := v.Str()
		if known := tt.image != ""; !v.Exists() || v.IsNull() == known || isString != known || name != string(tt.image) {
			t.Errorf("%s: the SDK reads image %q (string %v, null %v)", b, name, isString, v.IsNull())
		}
	}
	for _, bad := range []string{`{"id":"c1","image":5}`, `{"id":"c1","image":["x"]}`, `{"id":"c1","image":{}}`} {
		var c hooks.Container
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s decodes (image %q)", bad, c.Image)
		}
	}
}

// TestUnknownImageThroughTheEngine: a hook sees the unknown image as null
// (its JSON Patch test for null holds, one for "" fails), and a patch of
// an event with an unknown image fits the schema.
func TestUnknownImageThroughTheEngine(t *testing.T) {
	spec := &specs.Spec{Version: "1.2.0", Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"}}
	for _, tt := range []struct {
		name  string
		image hooks.NullString
		test  string // the value the hook's test op expects at /container/image
		ok    bool
	}{
		{"unknown is null", "", `null`, true},
		{"unknown is not empty", "", `""`, false},
		{"known is its name", "husk.local/busybox:latest", `"husk.local/busybox:latest"`, true},
		{"known is not null", "husk.local/busybox:latest", `null`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := scripted(t, "image", `{"allow":true,"patch":[{"op":"test","path":"/container/image","value":`+tt.test+`},`+
				`{"op":"add","path":"/spec/hostname","value":"patched"}]}`, hooks.ContainerCreate)
			h.OnError = config.HookDeny
			e := newEngine(t, []config.Hook{h}, hooks.Options{})
			ev := &hooks.ContainerCreateEvent{Container: hooks.Container{ID: "c1", Image: tt.image}, Spec: spec}
			out, err := e.Run(context.Background(), hooks.ContainerCreate, ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Err() == nil; got != tt.ok {
				t.Fatalf("test op %s on image %q: allowed %v (%v), want %v", tt.test, tt.image, got, out.Err(), tt.ok)
			}
			if !tt.ok {
				return
			}
			if err := out.Decode(ev); err != nil || ev.Spec.Hostname != "patched" || ev.Container.Image != tt.image {
				t.Fatalf("patched event: hostname %q, image %q, %v", ev.Spec.Hostname, ev.Container.Image, err)
			}
		})
	}
}
