package sdk_test

import (
	"fmt"

	"github.com/huskrt/husk/policies/sdk"
)

// A container whose image husk does not know carries "image": null; the
// policy tells it from a known name before comparing.
func ExampleValue_IsNull() {
	denied := sdk.NewSet("docker.io/evil/")
	decide := func(ev sdk.Event) sdk.Decision {
		image := ev.At("/container/image")
		if image.IsNull() {
			return sdk.Deny("image unknown")
		}
		if image.PrefixIn(denied) {
			name, _ := image.Str()
			return sdk.Deny("image " + name + " is denied")
		}
		return sdk.Allow()
	}
	for _, ev := range []string{
		`{"version":1,"container":{"id":"c1","image":"docker.io/library/nginx:1.27"}}`,
		`{"version":1,"container":{"id":"c2","image":"docker.io/evil/miner:1"}}`,
		`{"version":1,"container":{"id":"c3","image":null}}`,
	} {
		if d := decide(sdk.NewEvent("container.create", []byte(ev))); d.Allowed() {
			fmt.Println("allow")
		} else {
			fmt.Println("deny:", d.Reason())
		}
	}
	// Output:
	// allow
	// deny: image docker.io/evil/miner:1 is denied
	// deny: image unknown
}
