package builtin

import (
	"golang.org/x/sys/unix"
)

// The VMM process's seccomp allow-list (x86-64), installed after the VM is
// built and before the guest runs, with every thread under it (TSYNC). Any
// other system call kills the process (SECCOMP_RET_KILL_PROCESS): the
// parent sees SIGSYS. What is left is what a running VM needs: the Go
// runtime, the control channel and hybrid vsock sockets, I/O on the
// descriptors it holds, and four KVM ioctls. It opens no file (the
// disks' are passed in), creates no process, and maps nothing
// executable.

// syscallGroup is a set of rules and why the VMM needs them.
type syscallGroup struct {
	why   string
	rules []syscallRule
}

// syscallRule allows one system call: always, or when one of alts holds;
// or, with errno set, fails it with errno instead of running it.
type syscallRule struct {
	name  string
	alts  []argCheck
	errno unix.Errno
}

// argCheck holds when argument arg, masked with mask, equals value.
type argCheck struct {
	arg         uint
	mask, value uint64
}

// ioctl requests the VMM makes while the guest runs (<linux/kvm.h>,
// <linux/fs.h>), checked against vmm/kvm's.
const (
	ioctlKVMRun       = 0xae80     // KVM_RUN
	ioctlKVMIRQLine   = 0x4008ae61 // KVM_IRQ_LINE
	ioctlKVMIRQFD     = 0x4020ae76 // KVM_IRQFD (a device's interrupt, re-registered)
	ioctlKVMIOEventFD = 0x4040ae79 // KVM_IOEVENTFD (a queue's notification)
	ioctlBlkGetSize64 = 0x80081272 // BLKGETSIZE64: a block device attached as a disk
)

func always(name string) syscallRule { return syscallRule{name: name} }

func denied(name string, errno unix.Errno) syscallRule {
	return syscallRule{name: name, errno: errno}
}

func argEquals(name string, arg uint, values ...uint64) syscallRule {
	r := syscallRule{name: name}
	for _, v := range values {
		r.alts = append(r.alts, argCheck{arg: arg, mask: 0xffff_ffff, value: v})
	}
	return r
}

func argMasked(name string, arg uint, mask, value uint64) syscallRule {
	return syscallRule{name: name, alts: []argCheck{{arg: arg, mask: mask, value: value}}}
}

// allowList is the list for a process whose pid (in its own PID
// namespace) is pid: signals may go to its own threads only.
func allowList(pid int) []syscallGroup {
	p := uint64(pid)
	return []syscallGroup{
		{"Go runtime and libc: memory (never executable)", []syscallRule{
			argMasked("mmap", 2, unix.PROT_EXEC, 0),
			argMasked("mprotect", 2, unix.PROT_EXEC, 0),
			always("munmap"), always("madvise"), always("brk"), always("mremap"),
		}},
		{"Go runtime and libc: threads (only threads), scheduling, exit", []syscallRule{
			argMasked("clone", 0, unix.CLONE_THREAD, unix.CLONE_THREAD),
			// clone3's flags are behind a pointer seccomp cannot read:
			// ENOSYS makes glibc fall back to clone.
			denied("clone3", unix.ENOSYS),
			always("futex"), always("set_robust_list"), always("rseq"),
			always("sched_yield"), always("sched_getaffinity"),
			always("nanosleep"), always("clock_nanosleep"),
			always("gettid"), always("getpid"),
			always("exit"), always("exit_group"), always("restart_syscall"),
		}},
		{"Go runtime: signals (preemption, vCPU kicks), to its own threads only", []syscallRule{
			always("rt_sigaction"), always("rt_sigprocmask"), always("rt_sigreturn"), always("sigaltstack"),
			argEquals("tgkill", 0, p),
			argEquals("kill", 0, p),
		}},
		{"time, CPU accounting, randomness (virtio-rng)", []syscallRule{
			always("clock_gettime"), always("gettimeofday"), always("getrusage"), always("getrandom"),
		}},
		{"the Go runtime's poller: sockets and eventfds", []syscallRule{
			always("epoll_pwait"), always("epoll_wait"), always("epoll_ctl"),
		}},
		{"I/O on descriptors it holds: console, eventfds, disks", []syscallRule{
			always("read"), always("write"), always("readv"), always("writev"),
			always("pread64"), always("pwrite64"), always("lseek"),
			always("fsync"), always("fdatasync"), always("fstat"), always("newfstatat"),
			always("close"),
			argEquals("fcntl", 1, unix.F_GETFL, unix.F_SETFL, unix.F_GETFD, unix.F_SETFD),
		}},
		{"the control channel and hybrid vsock: Unix sockets only", []syscallRule{
			argEquals("socket", 0, unix.AF_UNIX),
			always("connect"), always("accept4"), always("shutdown"),
			always("recvmsg"), always("sendmsg"), always("recvfrom"), always("sendto"),
			always("getsockopt"), always("setsockopt"), always("getsockname"), always("getpeername"),
		}},
		{"KVM while the guest runs, and sizing a block device being attached", []syscallRule{
			argEquals("ioctl", 1, ioctlKVMRun, ioctlKVMIRQLine, ioctlKVMIRQFD, ioctlKVMIOEventFD, ioctlBlkGetSize64),
		}},
		{"opening files fails (nothing to open after the pivot): an error, not a kill", []syscallRule{
			denied("openat", unix.EACCES), denied("open", unix.EACCES),
		}},
	}
}
