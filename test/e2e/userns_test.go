package e2e

import (
	"strconv"
	"testing"

	"github.com/huskrt/husk/test/devenv"
)

// usernsHost is the first host ID of the user namespace mapping the tests
// give containers.
const usernsHost = 65536 * 29

// usernsProbe prints what a container sees of its user namespace and
// whether its root can write its root filesystem and reopen its stdout.
const usernsProbe = `
id -u; id -g
cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '
if touch /rootfs-write 2>/dev/null; then echo rootfs-writable; else echo rootfs-readonly; fi
stat -c '%u:%g' /bin/busybox
if echo via-dev-stdout >/dev/stdout 2>/dev/null; then :; else echo dev-stdout-refused; fi
`

// TestUserNamespace runs `ctr run --uidmap --gidmap` (a user namespace
// mapped to 65536 host IDs, the image's files remapped by the snapshotter):
// under husk as under runc, the container is root in it, its files are its
// root's, it can write its rootfs and reopen its stdout.
func TestUserNamespace(t *testing.T) {
	devenv.AllowTraverse(t, needBench(t).Dir)
	m := "0:" + strconv.Itoa(usernsHost) + ":65536"
	want := "0\n0\n 0 " + strconv.Itoa(usernsHost) + " 65536\n 0 " + strconv.Itoa(usernsHost) + " 65536\n" +
		"rootfs-writable\n0:0\nvia-dev-stdout\n"
	for _, rt := range []string{runc, husk} {
		t.Run(shortRuntime(rt), func(t *testing.T) {
			id := name(t, "")
			cleanupContainer(t, id)
			out := ctr(t, "run", "--rm", "--runtime", rt, "--uidmap", m, "--gidmap", m, devenv.BusyboxRef, id, "sh", "-c", usernsProbe)
			if out != want {
				t.Fatalf("%s: got\n%s\nwant\n%s", shortRuntime(rt), out, want)
			}
		})
	}
}
