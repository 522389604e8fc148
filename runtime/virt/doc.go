// Package virt is husk's VirtContainer handler: each pod runs in a VM of its
// own, started by a Hypervisor backend (builtin: husk's VMM in a confined
// process per VM), and its containers run inside the guest under
// husk-agent, which the handler drives over vsock (agent/client).
package virt
