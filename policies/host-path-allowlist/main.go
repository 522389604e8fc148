// Command host-path-allowlist is a hook policy (built-in, see
// docs/hooks.md) that allows bind mounts only of host paths at or under
// the listed directories, at container.mount.
//
// Configuration:
//
//	paths  list of absolute host directories; a bind mount's source must
//	       be one of them or below one ("/srv/data" allows
//	       "/srv/data/x", not "/srv/database")
package main

import (
	"errors"
	"path"
	"strings"

	"github.com/huskrt/husk/policies/sdk"
)

func init() {
	sdk.OnInit(configure)
	sdk.Handle(decide)
}

func main() {}

// allowed are the host directories, cleaned.
var allowed []string

// bindOptions mark a bind mount in a mount's options.
var bindOptions = sdk.NewSet("bind", "rbind")

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		if !k.Is("paths") {
			name, _ := k.Str()
			return errors.New("unknown key " + name + " (want paths)")
		}
		if v.Kind() != sdk.Array || len(v.Strings()) != v.Len() {
			return errors.New("paths: want a list of absolute directories")
		}
		allowed = nil
		for _, p := range v.Strings() {
			if !path.IsAbs(p) {
				return errors.New("paths: " + p + " is not absolute")
			}
			allowed = append(allowed, path.Clean(p))
		}
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if ev.Point() != sdk.ContainerMount {
		return sdk.Allow()
	}
	mount := ev.At("/mount")
	if !mount.At("/type").Is("bind") && mount.At("/options").Find(bindOptions) < 0 {
		return sdk.Allow()
	}
	source, _ := mount.At("/source").Str()
	if under(source) {
		return sdk.Allow()
	}
	return sdk.Deny("bind mount of host path " + source + " is not allowed")
}

// under reports whether source, cleaned (so that ".." cannot climb out),
// is an allowed directory or below one.
func under(source string) bool {
	if !path.IsAbs(source) {
		return false
	}
	source = path.Clean(source)
	for _, dir := range allowed {
		if source == dir || dir == "/" || strings.HasPrefix(source, dir+"/") {
			return true
		}
	}
	return false
}
