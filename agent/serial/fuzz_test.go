package serial

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzPortHeader: ReadPortHeader reads exactly PortHeaderSize bytes or
// fails, and what it accepts is what WritePortHeader writes.
func FuzzPortHeader(f *testing.F) {
	var ok bytes.Buffer
	_ = WritePortHeader(&ok, 1024)
	f.Add(ok.Bytes())
	f.Add([]byte("HSKP\xff\xff\xff\xffrest"))
	f.Add([]byte("HSKQ\x00\x00\x04\x00"))
	f.Add([]byte("HSK"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		port, err := ReadPortHeader(r)
		if err != nil {
			if len(in) >= PortHeaderSize && !errors.Is(err, ErrBadPortHeader) {
				t.Fatalf("a full header failed with %v, not ErrBadPortHeader", err)
			}
			return
		}
		if read := len(in) - r.Len(); read != PortHeaderSize {
			t.Fatalf("read %d bytes, want %d", read, PortHeaderSize)
		}
		var out bytes.Buffer
		_ = WritePortHeader(&out, port)
		if !bytes.Equal(out.Bytes(), in[:PortHeaderSize]) {
			t.Fatalf("accepted % x as port %d, which writes % x", in[:PortHeaderSize], port, out.Bytes())
		}
	})
}

// FuzzHandshake: the scanner finds in any byte stream only messages that
// are there, byte for byte, in order, and never skips past its limit.
func FuzzHandshake(f *testing.F) {
	n := nonce{1, 2, 3}
	hello := message{kind: kindHello, nonce: n}.bytes()
	f.Add(hello, uint16(0))
	f.Add(append([]byte("noiseHSKS"), hello...), uint16(8))
	f.Add(append(hello[:10:10], hello...), uint16(100))
	f.Add(bytes.Repeat([]byte("H"), 100), uint16(50))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		sc := newScanner(bytes.NewReader(in), int64(limit))
		at := 0
		for {
			m, err := sc.next()
			if err != nil {
				if errors.Is(err, errSkipLimit) && (limit == 0 || sc.skipped <= int64(limit)) {
					t.Fatalf("skip limit error after %d bytes with limit %d", sc.skipped, limit)
				}
				if !errors.Is(err, errSkipLimit) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			b := m.bytes()
			i := bytes.Index(in[at:], b)
			if i < 0 {
				t.Fatalf("message % x is not in the input after offset %d", b, at)
			}
			at += i + len(b)
			if limit > 0 && sc.skipped > int64(limit) {
				t.Fatalf("skipped %d bytes past the limit %d", sc.skipped, limit)
			}
		}
	})
}

// FuzzGuard: the guard's verdict on a byte stream does not depend on how
// reads cut it, and it never lets through a frame it refuses.
func FuzzGuard(f *testing.F) {
	f.Add(append(frame(frameData, 0, 1, 3), "abc"...), uint8(1))
	f.Add(frame(framePing, flagSYN, 0, 1), uint8(5))
	f.Add(append(append(frame(frameData, 0, 1, 2), "HS"...), frame(frameWindowUpdate, flagSYN, 2, 0)...), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		whole := &guard{maxLength: 256 << 10}
		werr := whole.check(in)
		pieces := &guard{maxLength: 256 << 10}
		step := int(cut%16) + 1
		var perr error
		for i := 0; i < len(in) && perr == nil; i += step {
			perr = pieces.check(in[i:min(i+step, len(in))])
		}
		if (werr == nil) != (perr == nil) {
			t.Fatalf("whole: %v; in pieces of %d: %v", werr, step, perr)
		}
		if werr != nil && !errors.Is(werr, ErrGuestProtocol) {
			t.Fatalf("refused with %v, not ErrGuestProtocol", werr)
		}
	})
}
