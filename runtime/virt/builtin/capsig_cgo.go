//go:build cgo

package builtin

/*
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

// husk_no_caps is every capability set, empty. Static: the handler
// touches no stack it does not need and calls no library function but
// syscall(2).
static struct __user_cap_data_struct husk_no_caps[_LINUX_CAPABILITY_U32S_3];

// husk_drop_caps runs on the thread the signal was sent to: it empties
// that thread's bounding set, then its permitted, effective and
// inheritable sets (which empties its ambient set too).
static void husk_drop_caps(int sig) {
	int saved = errno;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	for (int c = 0; c < 64; c++)
		syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0); // EINVAL past the last cap
	syscall(SYS_capset, &hdr, husk_no_caps);
	errno = saved;
}

static struct sigaction husk_saved;

// husk_install_drop_caps makes sig run husk_drop_caps, on the thread's
// signal stack (the Go runtime gives every thread one; a goroutine's
// stack is too small for a C handler).
static int husk_install_drop_caps(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = husk_drop_caps;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	return sigaction(sig, &sa, &husk_saved) == 0 ? 0 : errno;
}

static int husk_restore_handler(int sig) {
	return sigaction(sig, &husk_saved, NULL) == 0 ? 0 : errno;
}
*/
import "C"

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// capSignal is the real-time signal that makes a thread drop its
// capabilities. The Go runtime uses none of them unless signal.Notify asks
// (and glibc only the first two).
const capSignal = unix.Signal(62)

// installCapDrop makes capSignal drop the receiving thread's capabilities
// and returns the function that puts the previous handler back.
func installCapDrop() (restore func() error, err error) {
	if e := C.husk_install_drop_caps(C.int(capSignal)); e != 0 {
		return nil, fmt.Errorf("sigaction: %w", syscall.Errno(e))
	}
	return func() error {
		if e := C.husk_restore_handler(C.int(capSignal)); e != 0 {
			return fmt.Errorf("sigaction: %w", syscall.Errno(e))
		}
		return nil
	}, nil
}
