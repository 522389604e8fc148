// Command audit-log is a hook policy (built-in, see docs/hooks.md) that
// writes one line to husk's log for every step it is asked about — the
// point and the pod, container and exec it concerns — and allows it. List
// the points to audit in its [[hook]] table.
//
// Configuration (optional):
//
//	level  "debug", "info" (default), "warn" or "error"
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

// level is the level of the lines.
var level = sdk.LevelInfo

var levels = map[string]sdk.Level{"debug": sdk.LevelDebug, "info": sdk.LevelInfo, "warn": sdk.LevelWarn, "error": sdk.LevelError}

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		name, _ := k.Str()
		s, _ := v.Str()
		l, ok := levels[s]
		switch {
		case name != "level":
			return errors.New("unknown key " + name + " (want level)")
		case !ok:
			return errors.New("level: want debug, info, warn or error")
		}
		level = l
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	line := "audit " + ev.PointName()
	for _, f := range [...]struct{ name, pointer string }{
		{"sandbox", "/sandbox/id"}, {"namespace", "/sandbox/namespace"},
		{"container", "/container/id"}, {"image", "/container/image"}, {"exec", "/exec_id"},
	} {
		if s, ok := ev.At(f.pointer).Str(); ok && s != "" {
			line += " " + f.name + "=" + s
		}
	}
	sdk.Log(level, line)
	return sdk.Allow()
}
