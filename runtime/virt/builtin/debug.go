package builtin

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Hooks for tests and for the nested harness's builds, all empty in the
// shim: nothing here is reachable unless a test or a build tag sets it.
var (
	// debugRequests are extra control requests, by op, each run in the
	// VMM process and answered with text: the unit tests register theirs,
	// builds with the huskvmmtest tag opForbidden.
	debugRequests map[string]func(m machine) (string, error)
	// seccompLogUnlisted logs unlisted system calls (to the kernel's audit
	// log) instead of killing the process: builds with the
	// huskvmmseccomplog tag, to find what the allow-list lacks.
	seccompLogUnlisted bool
	// extraSyscalls are allow-list groups a build adds (the race
	// detector's runtime needs a few more calls).
	extraSyscalls []syscallGroup
)

// opForbidden makes the VMM process call mount(2), which is not on its
// allow-list: the process must die of SIGSYS at once.
const opForbidden = "debug-forbidden-syscall"

// forbiddenSyscall calls mount with no arguments (EFAULT if it ran at
// all, so harmless without seccomp) and says that it survived.
func forbiddenSyscall(machine) (string, error) {
	_, _, errno := unix.Syscall6(unix.SYS_MOUNT, 0, 0, 0, 0, 0, 0)
	return fmt.Sprintf("mount(2) returned %v: no seccomp filter stopped it", errno), nil
}
