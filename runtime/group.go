package runtime

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// AnnotationGroup puts containers outside any pod in one shim: those of a
// namespace with the same value share it (as containerd's runc shim does
// with io.containerd.runc.v2.group). Each stays its own sandbox, with its
// own configuration, state and cgroup; what they share is the shim
// process, so a group saves a shim per container and the start of one,
// and a crash of the shim ends all of them.
const AnnotationGroup = "io.husk.group"

// maxGroupLen bounds a group name.
const maxGroupLen = 64

// ShimGroup returns the name of the shim that serves container id: its
// pod's sandbox id, else its io.husk.group, else its own id. shared says
// whether other containers may be served by the same shim. A malformed
// group name is an invalid argument.
func ShimGroup(id string, annotations map[string]string) (group string, shared bool, err error) {
	if pod := PodOf(id, annotations); pod.CRI {
		return pod.SandboxID, true, nil
	}
	g, ok := annotations[AnnotationGroup]
	if !ok {
		return id, false, nil
	}
	if err := validGroup(g); err != nil {
		return "", false, fmt.Errorf("annotation %s=%q: %w", AnnotationGroup, g, err)
	}
	return groupPrefix + g, true, nil
}

// groupPrefix starts the shim name of an io.husk.group (a container id
// cannot hold ':').
const groupPrefix = "group:"

// IsGroup reports whether a ShimGroup name is an io.husk.group's.
func IsGroup(name string) bool { return strings.HasPrefix(name, groupPrefix) }

// validGroup accepts 1 to maxGroupLen letters, digits, '.', '_' and '-'.
func validGroup(g string) error {
	if g == "" || len(g) > maxGroupLen {
		return fmt.Errorf("want 1 to %d characters: %w", maxGroupLen, errdefs.ErrInvalidArgument)
	}
	for _, c := range g {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%q is not allowed (want letters, digits, '.', '_' and '-'): %w", c, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
