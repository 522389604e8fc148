// Package agent is husk-agent's service: PID 1 of a VirtContainer's VM,
// serving the host's calls (agent/api) over vsock, or over a virtio-serial
// port where the host has no vsock (agent/serial: ServeAll takes both
// channels' listeners), and running the pod's containers with the same
// Linux engine as LinuxContainer (runtime/linux, libcontainer), inside
// the guest.
//
// The host is the agent's only client and is trusted by it; what the agent
// must hold to is the other direction: it answers every call within the
// bound the call names (WaitProcess and WaitOOM are long-polls with a
// timeout), never keeps a stream nobody claims, and never exits while it
// is PID 1 (the kernel would panic).
//
// A container's stdio travels on connections of its own (api.StreamPort):
// the host attaches them before it names them in CreateContainer or
// ExecProcess, and the engine takes them as "stream:<id>" stdio
// (runtime/stdio.Streams). Port-forwarded connections arrive on
// api.ForwardPort, one each, and are joined to the port they name on the
// guest (forward.go). Debug consoles arrive on api.DebugConsolePort, each a
// shell on a terminal of its own in the guest's namespaces (console.go),
// only when the VM was booted with the console on (its kernel command
// line: api.DebugConsoleParam); otherwise each is refused. The guest image
// has no shell: RunDebugShell is the agent's own (debugshell.go).
//
// The package imports the handler contract, the Linux engine and the agent
// API only: never the hook engine, wazero, the VMM or the shim.
package agent
