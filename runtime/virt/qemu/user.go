package qemu

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"

	"github.com/containerd/errdefs"
)

// credential is the identity QEMU runs as for the configured user: its
// uid, its primary gid and its groups (the kvm group, for /dev/kvm). nil
// for "": QEMU stays the shim's user.
func credential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, nil
	}
	var u *user.User
	var err error
	if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: QEMU's user %q: %v", errdefs.ErrInvalidArgument, name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("QEMU's user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("QEMU's user %q: gid %q: %w", name, u.Gid, err)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("QEMU's user %q: groups: %w", name, err)
	}
	for _, id := range ids {
		g, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("QEMU's user %q: group %q: %w", name, id, err)
		}
		c.Groups = append(c.Groups, uint32(g))
	}
	return c, nil
}
