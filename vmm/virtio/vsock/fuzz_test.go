package vsock

import (
	"encoding/binary"
	"testing"

	"github.com/huskrt/husk/vmm/virtio"
)

// Fuzz input layout: a header, then the bytes of a 4 KiB stretch of guest
// memory the chain's buffers are cut from (zero-padded); buffers may
// overlap, as a guest can make them.
//
//	[0]     number of buffers - 1 (mod 8)
//	[1]     how many of them are device-readable (mod buffers+1)
//	[2:34]  per buffer: offset, length (little-endian uint16 each; the
//	        offset mod 4 KiB, the length mod the room left)
const (
	fuzzHeader  = 2 + 8*4
	fuzzMemSize = 4096
)

func fuzzChain(data []byte) *virtio.Chain {
	n := int(data[0]%8) + 1
	mem := make([]byte, fuzzMemSize)
	copy(mem, data[fuzzHeader:])
	c := &virtio.Chain{Readable: int(data[1]) % (n + 1)}
	for i := range n {
		off := int(binary.LittleEndian.Uint16(data[2+4*i:])) % fuzzMemSize
		size := int(binary.LittleEndian.Uint16(data[4+4*i:])) % (fuzzMemSize - off + 1)
		c.Buffers = append(c.Buffers, virtio.Buffer{GPA: uint64(off), Data: mem[off : off+size : off+size]})
	}
	return c
}

func fuzzSeed(readable int, bufs ...[]byte) []byte {
	data := make([]byte, fuzzHeader)
	data[0], data[1] = byte(len(bufs)-1), byte(readable)
	var mem []byte
	for i, b := range bufs {
		binary.LittleEndian.PutUint16(data[2+4*i:], uint16(len(mem)))
		binary.LittleEndian.PutUint16(data[4+4*i:], uint16(len(b)))
		mem = append(mem, b...)
	}
	return append(data, mem...)
}

func rawHeader(h header, payloadLen uint32) []byte {
	h.len = payloadLen
	b := make([]byte, hdrSize)
	h.encode(b)
	return b
}

// FuzzVsockPacket feeds arbitrary chains to the transmit parser and the
// receive writer. Neither may panic; a parsed packet comes from the guest
// to the host and carries exactly its header's length of payload, all of
// it inside the chain; a written packet fits the chain's writable buffers.
func FuzzVsockPacket(f *testing.F) {
	req := guestHeader(opRequest, 1234, 5000)
	rw := guestHeader(opRW, 1234, 5000)
	f.Add(fuzzSeed(1, rawHeader(req, 0)))
	f.Add(fuzzSeed(2, rawHeader(rw, 5), []byte("hello")))
	f.Add(fuzzSeed(1, append(rawHeader(rw, 5), "hello"...)))
	f.Add(fuzzSeed(2, rawHeader(rw, 1<<20), []byte("short")))
	f.Add(fuzzSeed(2, rawHeader(rw, 0)[:20], rawHeader(rw, 0)[20:]))
	f.Add(fuzzSeed(0, make([]byte, hdrSize), make([]byte, 100)))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzHeader {
			return
		}
		c := fuzzChain(data)
		p, err := parseTX(c, testCID)
		if err == nil {
			if p.hdr.srcCID != testCID || p.hdr.dstCID != HostCID {
				t.Fatalf("accepted a packet from %d to %d", p.hdr.srcCID, p.hdr.dstCID)
			}
			var n uint64
			for _, b := range p.payload {
				n += uint64(len(b))
			}
			if n != uint64(p.hdr.len) || n > maxPayload {
				t.Fatalf("payload of %d bytes for a header saying %d", n, p.hdr.len)
			}
			if len(p.payload) > len(c.Buffers) {
				t.Fatalf("%d payload slices from %d buffers", len(p.payload), len(c.Buffers))
			}
		}
		var room uint64
		for _, b := range c.WritableBuffers() {
			room += uint64(len(b.Data))
		}
		payload := data[fuzzHeader:]
		written, sent, ok := writeRX(c, header{op: opRW}, payload)
		if ok != (room >= hdrSize) || uint64(written) > room || sent > len(payload) || ok && int(written) != hdrSize+sent {
			t.Fatalf("writeRX into %d bytes: written %d, sent %d of %d, ok %v", room, written, sent, len(payload), ok)
		}
	})
}
