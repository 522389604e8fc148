// Package api is the husk agent protocol: the ttrpc service husk-agent
// serves inside a VirtContainer's VM (agent.proto, and the code protoc
// generates from it with `make proto`), and the stdio streams beside it.
//
// # Connections
//
// The host always dials the guest, over vsock (vhost-vsock) or hybrid vsock
// (a Unix socket the VMM bridges: "CONNECT <port>\n", answered
// "OK <port>\n"). The guest never dials the host, so a guest has no way to
// reach a host listener.
//
//   - AgentPort carries one ttrpc connection: the Agent service. Every
//     call is small and bounded in time; long waits (WaitProcess, WaitOOM)
//     are long-polls with a timeout the host chooses, so each call has a
//     deadline and the host calls again.
//   - StreamPort carries stdio, one connection per stream.
//   - ForwardPort carries port-forwarded TCP connections, one connection
//     each: an 8-byte header names the guest's port, the agent answers one
//     byte (connected or refused), then raw bytes both ways (forward.go).
//
// # Streams
//
// The host picks a random, non-zero uint64 for each stdio stream of a
// process (NewStreamID), dials StreamPort once per stream and writes the
// 16-byte header WriteStreamHeader makes: "HSK1", four zero bytes, then the
// id as a big-endian uint64. It then names the ids in the Stdio of
// CreateContainer or ExecProcess; the agent pairs each connection with the
// process whose Stdio names its id. The host attaches a process's streams
// before the call that names them, so no output is written before the host
// reads it; the agent holds a connection no process has claimed for a
// bound of its own, then drops it.
//
// After the header, a stream carries raw bytes, one way:
//
//   - stdout and stderr carry the process's output to the host until EOF:
//     the agent closes the connection once the process (and every process
//     that inherited the descriptor) has closed it;
//   - stdin carries the host's bytes to the process. The host half-closes
//     the connection (or closes it, or calls CloseStdin) to give the
//     process EOF.
//
// With a terminal there is no stderr stream: the terminal's output comes on
// stdout.
//
// Keeping stdio out of ttrpc keeps the control connection free of bulk
// data (a chatty process cannot delay a Kill) and lets each stream use the
// transport's own flow control, instead of RPCs that copy chunks.
package api
