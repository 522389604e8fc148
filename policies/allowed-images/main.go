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
	name, _ := image.Str()
	if name == "" {
		return sdk.Deny("the container's image is not known, and only allowed images may run")
	}
	return sdk.Deny("image " + name + " is not allowed")
}
