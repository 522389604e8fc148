// Command readonly-rootfs is a hook policy (built-in, see docs/hooks.md)
// that makes containers' root filesystems read-only by patching the step:
// at container.rootfs it sets readonly, at container.create it sets the
// OCI spec's root.readonly. It never denies.
//
// Configuration (optional):
//
//	exempt_images  list of image name prefixes left writable, such as
//	               "docker.io/library/postgres"
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

// exempt are the image name prefixes left writable.
var exempt sdk.Set

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		if !k.Is("exempt_images") {
			name, _ := k.Str()
			return errors.New("unknown key " + name + " (want exempt_images)")
		}
		if v.Kind() != sdk.Array || len(v.Strings()) != v.Len() {
			return errors.New("exempt_images: want a list of image name prefixes")
		}
		exempt = sdk.NewSet(v.Strings()...)
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if exempt.Len() > 0 && ev.At("/container/image").PrefixIn(exempt) {
		return sdk.Allow()
	}
	switch ev.Point() {
	case sdk.ContainerRootfs:
		if ro, _ := ev.At("/readonly").Bool(); !ro {
			return sdk.Patch(sdk.Replace("/readonly", true))
		}
	case sdk.ContainerCreate:
		root := ev.At("/spec/root")
		if root.Kind() != sdk.Object {
			return sdk.Allow() // no root filesystem (e.g. a Wasm module)
		}
		if ro, _ := root.At("/readonly").Bool(); !ro {
			// add also replaces an existing member.
			return sdk.Patch(sdk.Add("/spec/root/readonly", true))
		}
	}
	return sdk.Allow()
}
