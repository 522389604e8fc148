// Package hookstest holds what hook tests and benchmarks share.
package hookstest

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/hooks"
)

// CreateEvent is the container.create event TARGETS.md's P5 measures:
// about 400 bytes of JSON; privileged adds CAP_SYS_ADMIN. The in-package
// benchmarks and `make bench` use this same event.
func CreateEvent(privileged bool) *hooks.ContainerCreateEvent {
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	if privileged {
		caps = []string{"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"}
	}
	return &hooks.ContainerCreateEvent{
		Sandbox:   hooks.Sandbox{ID: "pod-7f3c", Namespace: "k8s.io", Handler: "linux"},
		Container: hooks.Container{ID: "ctr-9a1e", Image: "docker.io/library/nginx:1.27"},
		Spec: &specs.Spec{
			Version: "1.2.0",
			Process: &specs.Process{
				Args:         []string{"nginx", "-g", "daemon off;"},
				Cwd:          "/",
				Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps},
			},
			Root: &specs.Root{Path: "rootfs"},
		},
	}
}
