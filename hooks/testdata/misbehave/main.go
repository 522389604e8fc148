// Command misbehave is a test policy that fails the way Go modules do:
// config "do" is "panic" (the Go runtime prints the panic and exits) or
// "oom" (it allocates until its memory limit stops it).
package main

import "github.com/huskrt/husk/policies/sdk"

var do string

var sink [][]byte

func init() {
	sdk.OnInit(func(cfg sdk.Value) error {
		do, _ = cfg.Get("do").Str()
		return nil
	})
	sdk.Handle(func(ev sdk.Event) sdk.Decision {
		switch do {
		case "panic":
			panic("policy bug at " + ev.PointName())
		case "oom":
			for {
				sink = append(sink, make([]byte, 1<<20))
			}
		}
		return sdk.Allow()
	})
}

func main() {}
