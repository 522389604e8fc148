// Command expect is a test policy: it allows when the event's value at
// config "path" (a list of member names and indexes) is config "want"
// (compared as JSON text), and denies saying what it found otherwise.
package main

import (
	"bytes"
	"errors"

	"github.com/huskrt/husk/policies/sdk"
)

var (
	path []string
	want []byte
)

func init() {
	sdk.OnInit(func(cfg sdk.Value) error {
		path = cfg.Get("path").Strings()
		want = append([]byte(nil), cfg.Get("want").Raw()...)
		if len(path) == 0 || want == nil {
			return errors.New("want path and want")
		}
		return nil
	})
	sdk.Handle(func(ev sdk.Event) sdk.Decision {
		got := ev.Get(path...).Raw()
		sdk.Log(sdk.LevelDebug, "checked "+sdk.Pointer(path...))
		if !bytes.Equal(got, want) {
			return sdk.Deny("expected " + string(want) + " at " + sdk.Pointer(path...) + ", got " + string(got))
		}
		return sdk.Allow()
	})
}

func main() {}
