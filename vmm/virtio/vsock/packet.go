// Package vsock is a virtio socket device (virtio 1.2, 5.10) whose host
// side is Firecracker's hybrid vsock: the guest's stream sockets are
// carried over Unix domain sockets on the host.
//
//   - Host to guest: a host process connects to the Unix socket at the
//     configured path and writes "CONNECT <port>\n"; the device asks the
//     guest to accept a connection to that port and, once it does, answers
//     "OK <host port>\n"; from then on the Unix connection is the stream.
//   - Guest to host: a guest connection to CID 2 (the host), port P, is
//     connected to the Unix socket "<path>_<P>", which a host process
//     listens on.
//
// Every packet the guest sends is hostile: headers are copied once and
// checked (addresses, type, operation, length against the chain and
// against the credit the device advertised), and a connection that breaks
// the protocol is reset; no guest value sizes a host allocation beyond the
// per-connection buffer the device advertised, and the number of
// connections is bounded.
package vsock

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/huskrt/husk/vmm/virtio"
)

// HostCID is the host's address: guest connections to it reach the Unix
// sockets.
const HostCID = 2

// Operations and types (virtio 1.2, 5.10.6).
const (
	opRequest       = 1
	opResponse      = 2
	opRST           = 3
	opShutdown      = 4
	opRW            = 5
	opCreditUpdate  = 6
	opCreditRequest = 7

	typeStream = 1

	shutdownRcv  = 1 // the sender will receive no more
	shutdownSend = 2 // the sender will send no more

	hdrSize = 44
	// maxPayload is the most data one packet carries
	// (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
	maxPayload = 64 << 10
)

// header is struct virtio_vsock_hdr.
type header struct {
	srcCID, dstCID   uint64
	srcPort, dstPort uint32
	len              uint32
	typ              uint16
	op               uint16
	flags            uint32
	bufAlloc         uint32
	fwdCnt           uint32
}

func (h *header) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], h.srcCID)
	le.PutUint64(b[8:], h.dstCID)
	le.PutUint32(b[16:], h.srcPort)
	le.PutUint32(b[20:], h.dstPort)
	le.PutUint32(b[24:], h.len)
	le.PutUint16(b[28:], h.typ)
	le.PutUint16(b[30:], h.op)
	le.PutUint32(b[32:], h.flags)
	le.PutUint32(b[36:], h.bufAlloc)
	le.PutUint32(b[40:], h.fwdCnt)
}

func decodeHeader(b []byte) header {
	le := binary.LittleEndian
	return header{
		srcCID: le.Uint64(b[0:]), dstCID: le.Uint64(b[8:]),
		srcPort: le.Uint32(b[16:]), dstPort: le.Uint32(b[20:]),
		len: le.Uint32(b[24:]), typ: le.Uint16(b[28:]), op: le.Uint16(b[30:]),
		flags: le.Uint32(b[32:]), bufAlloc: le.Uint32(b[36:]), fwdCnt: le.Uint32(b[40:]),
	}
}

// Why a packet from the guest is dropped.
var (
	errShortHeader = errors.New("packet header shorter than 44 bytes")
	errSrcCID      = errors.New("source CID is not the guest's")
	errDstCID      = errors.New("destination CID is not the host")
	errLength      = errors.New("payload length beyond the chain or the 64 KiB limit")
	errWritable    = errors.New("transmit chain has device-writable buffers")
)

// txPacket is a packet the guest sent: its header, copied, and its payload,
// still in guest memory.
type txPacket struct {
	hdr     header
	payload [][]byte // exactly hdr.len bytes in all
}

// parseTX reads a packet from a transmit chain. The header may span
// buffers; the payload is the hdr.len bytes that follow it. The slices it
// returns number at most the chain's buffers.
func parseTX(c *virtio.Chain, guestCID uint64) (txPacket, error) {
	var p txPacket
	if c.Readable != len(c.Buffers) {
		return p, errWritable
	}
	var raw [hdrSize]byte
	got := 0
	var rest [][]byte
	var restLen uint64
	for _, b := range c.ReadableBuffers() {
		d := b.Data
		n := copy(raw[got:], d)
		got += n
		if d = d[n:]; len(d) > 0 {
			rest = append(rest, d)
			restLen += uint64(len(d))
		}
	}
	if got < hdrSize {
		return p, fmt.Errorf("%w: %d bytes", errShortHeader, got)
	}
	p.hdr = decodeHeader(raw[:])
	if p.hdr.srcCID != guestCID {
		return p, fmt.Errorf("%w: %d, guest is %d", errSrcCID, p.hdr.srcCID, guestCID)
	}
	if p.hdr.dstCID != HostCID {
		return p, fmt.Errorf("%w: %d", errDstCID, p.hdr.dstCID)
	}
	n := uint64(p.hdr.len)
	if n > maxPayload || n > restLen {
		return p, fmt.Errorf("%w: %d bytes, %d in the chain", errLength, n, restLen)
	}
	for _, d := range rest {
		if n == 0 {
			break
		}
		take := min(uint64(len(d)), n)
		p.payload = append(p.payload, d[:take])
		n -= take
	}
	return p, nil
}

// writeRX writes a packet into a receive chain's writable buffers: the
// header, then as much of payload as fits. It returns the bytes written and
// how many payload bytes went; ok is false if not even the header fits.
func writeRX(c *virtio.Chain, hdr header, payload []byte) (written uint32, sent int, ok bool) {
	bufs := c.WritableBuffers()
	var room uint64
	for _, b := range bufs {
		room += uint64(len(b.Data))
	}
	if room < hdrSize {
		return 0, 0, false
	}
	n := min(uint64(len(payload)), room-hdrSize)
	hdr.len = uint32(n)
	var raw [hdrSize]byte
	hdr.encode(raw[:])
	w := chainWriter{bufs: bufs}
	w.write(raw[:])
	w.write(payload[:n])
	return uint32(hdrSize + n), int(n), true
}

// chainWriter copies bytes into a chain's writable buffers in order.
type chainWriter struct {
	bufs []virtio.Buffer
	off  int // into bufs[0].Data
}

func (w *chainWriter) write(p []byte) {
	for len(p) > 0 && len(w.bufs) > 0 {
		n := copy(w.bufs[0].Data[w.off:], p)
		p, w.off = p[n:], w.off+n
		if w.off == len(w.bufs[0].Data) {
			w.bufs, w.off = w.bufs[1:], 0
		}
	}
}
