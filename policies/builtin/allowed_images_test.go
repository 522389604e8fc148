package builtin

import (
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const allowedImages = "../allowed-images"

// unknownImage is allowed-images' reason for a container whose image husk
// does not know.
const unknownImage = "image unknown: husk knows no image name for this container (as for ctr run --rootfs), and only listed images may run"

func TestAllowedImages(t *testing.T) {
	p := moduletest.MustLoad(t, allowedImages, `{"images":["docker.io/library/","registry.example.com/app:"]}`)
	// By the image member's JSON.
	for image, reason := range map[string]string{
		`"docker.io/library/nginx:1.27"`:     "",
		`"registry.example.com/app:v2"`:      "",
		`"registry.example.com/app-evil:v2"`: "image registry.example.com/app-evil:v2 is not allowed",
		`"ghcr.io/x/y:latest"`:               "image ghcr.io/x/y:latest is not allowed",
		`"ghcr.io/\u0022x"`:                  `image ghcr.io/"x is not allowed`,
		`null`:                               unknownImage, // what husk sends for an image it does not know
		`""`:                                 unknownImage,
		`42`:                                 unknownImage,
	} {
		d := p.Decide(t, "container.create", `{"version":1,"container":{"id":"c","image":`+image+`}}`)
		if d.Allow != (reason == "") || d.Denied() != reason {
			t.Errorf("image %s: %+v, want reason %q", image, d, reason)
		}
	}
	if d := p.Decide(t, "container.create", `{"version":1,"container":{"id":"c"}}`); d.Allow || d.Reason != unknownImage {
		t.Errorf("no image member: %+v, want reason %q", d, unknownImage)
	}
	if d := p.Decide(t, "process.exec", `{"version":1}`); !d.Allow {
		t.Error("another point denied")
	}
	for cfg, msg := range map[string]string{
		`{}`:                 "images: required (a list of image name prefixes)",
		`{"images":[]}`:      "images: want a non-empty list of image name prefixes",
		`{"images":"x"}`:     "images: want a non-empty list of image name prefixes",
		`{"images":["x",1]}`: "images: want a non-empty list of image name prefixes",
		`{"image":["x"]}`:    "unknown key image (want images)",
	} {
		if _, err := moduletest.Load(t, allowedImages, cfg); !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
	if _, err := moduletest.Load(t, allowedImages, ""); !contains(err, "images: required") {
		t.Errorf("Load without a config = %v", err)
	}
}
