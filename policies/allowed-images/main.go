// Command allowed-images is a hook policy (built-in, see docs/hooks.md)
// that allows only containers whose image name starts with one of the
// configured prefixes, at container.create.
//
// Configuration:
//
//	images  list of image name prefixes, required, such as
//	        "docker.io/library/" or "registry.example.com/team/app:"
//	        (end a prefix with "/" or ":" so that "docker.io/library/nginx"
//	        does not also allow "docker.io/library/nginx-evil")
//
// A container whose image husk does not know ("image": null) is denied.
package main

import (
	"errors"

	"github.com/huskrt/husk/policies/sdk"
)

func init() {
	sdk.OnInit(configure)
	sdk.Handle(decide)
}

func main() {}

// allowed are the image name prefixes.
var allowed sdk.Set

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		if !k.Is("images") {
			name, _ := k.Str()
			return errors.New("unknown key " + name + " (want images)")
		}
		if v.Kind() != sdk.Array || v.Len() == 0 || len(v.Strings()) != v.Len() {
			return errors.New("images: want a non-empty list of image name prefixes")
		}
		allowed = sdk.NewSet(v.Strings()...)
	}
	if allowed.Len() == 0 {
		return errors.New("images: required (a list of image name prefixes)")
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if ev.Point() != sdk.ContainerCreate {
		return sdk.Allow()
	}
	image := ev.At("/container/image")
	if image.PrefixIn(allowed) {
		return sdk.Allow()
	}
	// husk sends null for an image it does not know: fail closed.
	name, ok := image.Str()
	if !ok || name == "" {
		return sdk.Deny(unknown)
	}
	return sdk.Deny("image " + name + " is not allowed")
}

// unknown is the reason given for a container whose image is null.
const unknown = "image unknown: husk knows no image name for this container (as for ctr run --rootfs), and only listed images may run"
