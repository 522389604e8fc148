package net

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/huskrt/husk/vmm/virtio"
)

// Fuzz input layout: a header, then the bytes of a 4 KiB stretch of guest
// memory the chain's buffers are cut from (zero-padded). Buffers may
// overlap, as a guest can make them.
//
//	[0]     number of buffers - 1 (mod 8)
//	[1]     how many of them are device-readable (mod buffers+1)
//	[2:4]   length of the host frame offered to the chain as a receive
//	        chain (little-endian, mod 4 KiB)
//	[4:36]  per buffer: offset, length (little-endian uint16 each; the
//	        offset mod 4 KiB, the length mod the room left)
const (
	fuzzHeader  = 4 + 8*4
	fuzzMemSize = 4096
)

func fuzzChain(data []byte) (*virtio.Chain, []byte, int) {
	n := int(data[0]%8) + 1
	mem := make([]byte, fuzzMemSize)
	copy(mem, data[fuzzHeader:])
	c := &virtio.Chain{Readable: int(data[1]) % (n + 1)}
	for i := range n {
		off := int(binary.LittleEndian.Uint16(data[4+4*i:])) % fuzzMemSize
		size := int(binary.LittleEndian.Uint16(data[6+4*i:])) % (fuzzMemSize - off + 1)
		c.Buffers = append(c.Buffers, virtio.Buffer{GPA: uint64(off), Data: mem[off : off+size : off+size]})
	}
	return c, mem, int(binary.LittleEndian.Uint16(data[2:])) % fuzzMemSize
}

func fuzzSeed(readable, frameLen int, bufs ...[]byte) []byte {
	data := make([]byte, fuzzHeader)
	data[0], data[1] = byte(len(bufs)-1), byte(readable)
	binary.LittleEndian.PutUint16(data[2:], uint16(frameLen))
	var mem []byte
	for i, b := range bufs {
		binary.LittleEndian.PutUint16(data[4+4*i:], uint16(len(mem)))
		binary.LittleEndian.PutUint16(data[6+4*i:], uint16(len(b)))
		mem = append(mem, b...)
	}
	return append(data, mem...)
}

// FuzzNetChain feeds arbitrary chains to the transmit parser and the
// receive writer. Nothing may panic; a parsed frame is exactly the
// device-readable bytes after a 12-byte header with no offload asked for,
// 14 to MaxFrame bytes long; a receive write either fits the header and
// the whole frame into the writable buffers (used length 12 + frame) or
// writes nothing (used length 0), and never touches a device-readable
// buffer.
func FuzzNetChain(f *testing.F) {
	f.Add(fuzzSeed(1, 60, append(make([]byte, HeaderSize), frame(60)...), make([]byte, HeaderSize+60)))
	f.Add(fuzzSeed(2, 100, make([]byte, 5), append(make([]byte, HeaderSize-5), frame(14)...), make([]byte, 40), make([]byte, 100)))
	f.Add(fuzzSeed(1, 14, append([]byte{1, 0}, make([]byte, 30)...), make([]byte, 8)))
	f.Add(fuzzSeed(1, 0, make([]byte, HeaderSize-1)))
	f.Add(fuzzSeed(0, 2000, make([]byte, 1500)))
	f.Add(fuzzSeed(0, 20, make([]byte, 0), make([]byte, 40)))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzHeader {
			return
		}
		c, mem, frameLen := fuzzChain(data)
		var readable []byte
		for _, b := range c.ReadableBuffers() {
			readable = append(readable, b.Data...)
		}
		got, err := parseTx(c)
		if err == nil {
			if len(got) < MinFrame || len(got) > MaxFrame || len(readable) != HeaderSize+len(got) ||
				!bytes.Equal(got, readable[HeaderSize:]) || readable[0] != 0 || readable[1] != 0 {
				t.Fatalf("parseTx accepted %d readable bytes as a %d-byte frame", len(readable), len(got))
			}
		}

		before := bytes.Clone(mem)
		room := 0
		writableAt := make([]bool, fuzzMemSize)
		for _, b := range c.WritableBuffers() {
			room += len(b.Data)
			for i := range b.Data {
				writableAt[int(b.GPA)+i] = true
			}
		}
		fr := frame(max(frameLen, 14))[:frameLen]
		n := fillRx(c, fr)
		switch {
		case n == 0:
			if room >= HeaderSize+len(fr) {
				t.Fatalf("a %d-byte frame not written into %d writable bytes", len(fr), room)
			}
		case int(n) != HeaderSize+len(fr) || int(n) > room:
			t.Fatalf("used %d for a %d-byte frame, %d writable", n, len(fr), room)
		}
		for i := range mem {
			if mem[i] != before[i] && !writableAt[i] {
				t.Fatalf("byte %d changed outside the writable buffers", i)
			}
		}
		if n != 0 && len(c.WritableBuffers()) > 0 {
			// Without overlapping buffers, the chain's writable bytes read
			// back as header + frame.
			var w []byte
			for _, b := range c.WritableBuffers() {
				w = append(w, b.Data...)
			}
			if !overlapping(c.WritableBuffers()) && !bytes.Equal(w[HeaderSize:n], fr) {
				t.Fatal("the frame does not read back")
			}
		}
	})
}

func overlapping(bs []virtio.Buffer) bool {
	for i := range bs {
		for j := range i {
			a, b := bs[i], bs[j]
			if a.GPA < b.GPA+uint64(len(b.Data)) && b.GPA < a.GPA+uint64(len(a.Data)) {
				return true
			}
		}
	}
	return false
}
