// Package serial carries the agent's ports over one byte stream: a
// virtio-serial port, the agent's channel on a host without vsock (QEMU
// without /dev/vhost-vsock). The host's end (Session) dials ports as
// virt.VM.Dial does over vsock; the guest's end (Serve) hands each stream
// to the listener of its port, so the agent serves its API and attaches
// stdio streams exactly as it does from vsock.
//
// On the wire, a session is:
//
//  1. a handshake that finds the session's start in whatever a previous
//     host or guest left in the port (handshake.go): the host repeats
//     HELLO(nonce) until the guest answers REPLY(nonce), then sends
//     START(nonce), which the guest acknowledges with STARTED(nonce);
//     every byte before a message is skipped, and only the host's fresh
//     random nonce is taken for an answer;
//  2. then yamux (github.com/hashicorp/yamux), the host its client: only
//     the host opens streams, and each begins with an 8-byte port header
//     (portheader.go) that the guest answers with one byte, accepted or
//     refused, before the port's own protocol (ttrpc on api.AgentPort; the
//     16-byte stream header and raw bytes on api.StreamPort).
//
// The host treats every byte from the guest as hostile: the handshake
// skips a bounded number of bytes, a guard (guard.go) parses the guest's
// yamux frames before yamux does and ends the session at the first frame
// no guest of ours sends (a stream it opens, a ping it starts), windows and
// the number of streams are bounded, and a guest that stops answering is
// found by keep-alives and its session closed. The guest trusts the host,
// as the agent does.
//
// The package imports the agent API and yamux only: the guest links it.
package serial
