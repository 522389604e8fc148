// Command resource-defaults is a hook policy (built-in, see docs/hooks.md)
// that gives containers without resource limits the configured defaults,
// by patching their OCI spec at container.create. Limits a container sets
// are kept. It never denies.
//
// Configuration (at least one):
//
//	memory_limit  bytes, for linux.resources.memory.limit
//	pids_limit    number, for linux.resources.pids.limit
package main

import (
	"errors"
	"strconv"

	"github.com/huskrt/husk/policies/sdk"
)

func init() {
	sdk.OnInit(configure)
	sdk.Handle(decide)
}

func main() {}

// The defaults; 0: none.
var memoryLimit, pidsLimit int64

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		n, ok := v.Int()
		if !ok || n <= 0 {
			name, _ := k.Str()
			return errors.New(name + ": want a positive whole number")
		}
		switch {
		case k.Is("memory_limit"):
			memoryLimit = n
		case k.Is("pids_limit"):
			pidsLimit = n
		default:
			name, _ := k.Str()
			return errors.New("unknown key " + name + " (want memory_limit, pids_limit)")
		}
	}
	if memoryLimit == 0 && pidsLimit == 0 {
		return errors.New("set memory_limit, pids_limit or both")
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if ev.Point() != sdk.ContainerCreate || ev.At("/spec").Kind() != sdk.Object {
		return sdk.Allow()
	}
	resources := ev.At("/spec/linux/resources")
	var missing []limit
	for _, l := range [...]limit{{"memory", memoryLimit}, {"pids", pidsLimit}} {
		if l.value > 0 && !resources.At("/"+l.kind+"/limit").Exists() {
			missing = append(missing, l)
		}
	}
	switch {
	case len(missing) == 0:
		return sdk.Allow()
	case ev.At("/spec/linux").Kind() != sdk.Object:
		return sdk.Patch(sdk.Add("/spec/linux", sdk.RawJSON(`{"resources":`+object(missing)+`}`)))
	case resources.Kind() != sdk.Object:
		return sdk.Patch(sdk.Add("/spec/linux/resources", sdk.RawJSON(object(missing))))
	}
	var ops []sdk.Op
	for _, l := range missing {
		if resources.At("/"+l.kind).Kind() == sdk.Object {
			ops = append(ops, sdk.Add("/spec/linux/resources/"+l.kind+"/limit", l.value))
		} else {
			ops = append(ops, sdk.Add("/spec/linux/resources/"+l.kind, sdk.RawJSON(`{"limit":`+strconv.FormatInt(l.value, 10)+`}`)))
		}
	}
	return sdk.Patch(ops...)
}

// limit is a default limit of one resource kind.
type limit struct {
	kind  string
	value int64
}

// object returns {"<kind>":{"limit":<value>},...} for limits.
func object(limits []limit) string {
	s := "{"
	for i, l := range limits {
		if i > 0 {
			s += ","
		}
		s += `"` + l.kind + `":{"limit":` + strconv.FormatInt(l.value, 10) + "}"
	}
	return s + "}"
}
