// Package client is the host side of the husk agent protocol: a Client
// calls husk-agent, inside a VirtContainer's VM, over one ttrpc connection
// (api.AgentPort) the host dialled.
//
// The guest is untrusted: once its vCPUs run, anything it says may come
// from code that took over the agent. So the Client
//
//   - bounds every call in time: a call runs under Options.CallTimeout (the
//     long-polls WaitProcess and WaitOOM under their own timeout plus
//     that), and a reply that never comes is an error wrapping
//     context.DeadlineExceeded naming the call and its deadline;
//   - bounds every reply in size, and reads the ttrpc frames' headers
//     before ttrpc does: a frame over ttrpc's 4 MiB limit, of a type a
//     client never receives, or for a stream it never opened breaks the
//     connection (Broken), rather than letting ttrpc skip gigabytes;
//   - checks every reply before handing it over (pids, exit statuses,
//     metrics, ids, string lengths): a reply that fails is an error
//     wrapping ErrBadReply, which tells a hostile or buggy agent from one
//     that refused (an agent's refusal is an errdefs error: NotFound,
//     FailedPrecondition, ...).
//
// A broken connection stays broken: every later call fails at once with
// the reason, and the caller dials again (or gives up on the VM).
package client
