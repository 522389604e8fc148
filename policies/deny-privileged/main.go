// Command deny-privileged is a hook policy (built-in, see docs/hooks.md)
// that denies privileged containers at container.create: a container
// whose process holds a capability that amounts to root on the host, or
// whose device cgroup allows every device (what `ctr run --privileged`
// and a Kubernetes privileged: true give).
//
// Configuration (all optional):
//
//	capabilities       list of capabilities that make a container
//	                   privileged; replaces the default list
//	allow_all_devices  true: do not deny an allow-all device rule
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

// denied are the capabilities that make a container privileged: each is
// enough to take over the host from inside a container.
var denied = sdk.NewSet(
	"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
	"CAP_SYS_BOOT", "CAP_MAC_ADMIN", "CAP_BPF", "CAP_DAC_READ_SEARCH",
)

// allowAllDevices, when set, lets an allow-all device rule through.
var allowAllDevices bool

// capabilitySets are the sets of an OCI process's capabilities, as JSON
// Pointers below process.capabilities.
var capabilitySets = [...]string{"/bounding", "/effective", "/permitted", "/inheritable", "/ambient"}

func configure(cfg sdk.Value) error {
	for k, v := range cfg.Members() {
		switch {
		case k.Is("capabilities"):
			if v.Kind() != sdk.Array || len(v.Strings()) != v.Len() {
				return errors.New("capabilities: want a list of capability names")
			}
			denied = sdk.NewSet(v.Strings()...)
		case k.Is("allow_all_devices"):
			b, ok := v.Bool()
			if !ok {
				return errors.New("allow_all_devices: want true or false")
			}
			allowAllDevices = b
		default:
			name, _ := k.Str()
			return errors.New("unknown key " + name + " (want capabilities, allow_all_devices)")
		}
	}
	return nil
}

func decide(ev sdk.Event) sdk.Decision {
	if ev.Point() != sdk.ContainerCreate {
		return sdk.Allow()
	}
	caps := ev.At("/spec/process/capabilities")
	for _, set := range capabilitySets {
		list := caps.At(set)
		if i := list.Find(denied); i >= 0 {
			name, _ := list.Index(i).Str()
			return sdk.Deny("privileged container: capability " + name + " in the " + set[1:] + " set")
		}
	}
	if !allowAllDevices {
		for _, rule := range ev.At("/spec/linux/resources/devices").Elems() {
			if allow, _ := rule.At("/allow").Bool(); allow && allDevices(rule) {
				return sdk.Deny("privileged container: the device cgroup allows every device")
			}
		}
	}
	return sdk.Allow()
}

// allDevices reports whether a device cgroup rule matches every device:
// type "a" (or none) and no major or minor number (or -1, the wildcard).
func allDevices(rule sdk.Value) bool {
	if t := rule.At("/type"); t.Exists() && !t.IsNull() && !t.Is("a") && !t.Is("") {
		return false
	}
	for _, n := range []string{"major", "minor"} {
		if v := rule.At("/" + n); v.Exists() && !v.IsNull() {
			if i, ok := v.Int(); !ok || i != -1 {
				return false
			}
		}
	}
	return true
}
