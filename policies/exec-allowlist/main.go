// Command exec-allowlist is a hook policy (built-in, see docs/hooks.md)
// that allows only the listed programs to be exec'd into running
// containers (kubectl exec, ctr task exec), at process.exec.
//
// Configuration:
//
//	commands  list of allowed programs, compared with the process's
//	          args[0] exactly (so list "/bin/ls" and "ls" if both are used)
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

// commands are the allowed args[0].
var commands sdk.Set

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		if !k.Is("commands") {
			name, _ := k.Str()
			return errors.New("unknown key " + name + " (want commands)")
		}
		if v.Kind() != sdk.Array || len(v.Strings()) != v.Len() {
			return errors.New("commands: want a list of programs")
		}
		commands = sdk.NewSet(v.Strings()...)
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if ev.Point() != sdk.ProcessExec {
		return sdk.Allow()
	}
	arg0 := ev.At("/process/args/0")
	if arg0.In(commands) {
		return sdk.Allow()
	}
	name, _ := arg0.Str()
	return sdk.Deny("exec of " + quote(name) + " is not on the allow-list")
}

// quote returns s in double quotes, for a reason (the decision encoder
// escapes it).
func quote(s string) string { return `"` + s + `"` }
