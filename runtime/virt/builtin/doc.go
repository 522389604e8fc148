// Package builtin is the "builtin" Hypervisor backend: husk's own VMM
// (vmm/), run, for each VM, in a confined process of its own, the way
// Firecracker's jailer runs Firecracker.
//
// Start runs husk-vmm (VMMBinary, cmd/husk-vmm) from the shim's directory,
// or, where it is not installed, re-executes the shim binary
// (/proc/self/exe), with ProcessArg as its first argument, in new mount
// and PID namespaces, and puts it in the pod's cgroup. Either program's
// main must hand that process to Main before anything else, as the shim
// does libcontainer's init:
//
//	if len(os.Args) > 1 && os.Args[1] == builtin.ProcessArg { builtin.Main() }
//
// Built with the husk_vmmchild tag, the package holds only that process's
// side (Main and what it calls): cmd/husk-vmm is built so, and links
// nothing of the shim's besides vmm/ (TestVMMBinaryLinksOnlyTheVMM).
//
// The VMM process reads its VM's config from the control channel (a
// SOCK_SEQPACKET socketpair, fd 3; see protocol.go), builds the VM from
// inside the VM's directory (so /dev/kvm, guest memory, the kernel and the
// hybrid vsock socket are all set up while it can still reach them), then
// confines itself (confine.go): its root becomes that directory,
// read-only, with the host's mounts detached; it holds only the
// descriptors a running VM needs; no thread keeps any capability;
// no_new_privs; a seccomp allow-list (syscalls.go) that kills the process
// on anything else. Only then does the guest run. The parent then drives
// it with one request at a time per caller (attach a disk whose
// descriptor it opened and locked itself, detach, stats, stop), and
// treats every reply as hostile: bounded, strictly decoded, validated,
// with a deadline; a VMM that breaks the protocol is killed.
//
// The console goes to the process's stdout, a pipe the parent copies to
// VMConfig.Console; its log to stderr, whose last lines go into Err. The
// process's pid and start time are recorded in the VM's directory, so
// that Cleanup, in a later shim, kills that process and no other.
//
// The process shares the host's network namespace: a VM's taps are
// created there (and later passed in), and a namespace of its own would
// cut it off from them. The guest's network is the pod's, through the
// tap.
package builtin
