// Package virt is husk's VirtContainer handler: each pod runs in a VM of its
// own, started by a Hypervisor backend (builtin: husk's VMM in a confined
// process per VM), and its containers run inside the guest under
// husk-agent, which the handler drives over vsock (agent/client).
//
// A container's root filesystem reaches the guest as an EROFS image on a
// disk (rootfs.go). Its bind mounts of host paths reach it as copies
// (volume.go, volumes.go): each source is walked with bounds and sent to
// the agent (SyncVolume), once per source and pod, and the bind's source
// becomes the copy's guest path. Read-only volumes (ConfigMaps, Secrets,
// tokens) are resynced from their source every second until the sandbox
// ends; writable ones are the guest's after the first copy. A bind at
// /dev/shm becomes the guest's own /dev/shm. See docs/RATIONALE.md and
// docs/limitations.md.
//
// A pod whose sandbox container names a network namespace gets a NIC per
// endpoint the CNI plugins left there: a tap in that namespace joined to
// the endpoint by tc mirred redirects, with the endpoint's MAC; the guest
// gets its name, MTU, addresses, routes and static neighbours
// (network.go, netns_linux.go, nics_linux.go; docs/RATIONALE.md). The
// namespace's loopback is steered into the guest for the CRI's
// port-forward: a BPF sk_lookup program hands every TCP connection to
// 127.0.0.1 or ::1 to a listener of the shim's, which carries it to the
// agent's forward port (steer_linux.go, portfwd.go).
//
// With [virt] debug_console the guest boots with husk.debug_console=1 and
// the shim serves DebugConsoleSocket in the pod's virt/ directory, each
// connection carried as it is to the agent's console port, for `huskctl
// debug-console` (debugconsole.go); off, there is no socket and the agent
// refuses the port.
package virt
