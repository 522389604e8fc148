package client

import (
	"errors"
	"testing"
)

// TestFrameScanner checks the scanner over streams cut at every offset:
// where the chunks end must not change what it accepts.
func TestFrameScanner(t *testing.T) {
	cat := func(fs ...[]byte) []byte {
		var b []byte
		for _, f := range fs {
			b = append(b, f...)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"one response", frame(3, 1, frameResponse, 0, []byte("abc")), true},
		{"empty response", frame(0, 1, frameResponse, 0, nil), true},
		{"three responses", cat(frame(1, 1, frameResponse, 0, []byte("a")), frame(0, 3, frameResponse, 0, nil), frame(2, 5, frameResponse, 0, []byte("bc"))), true},
		{"a header cut short", frame(3, 1, frameResponse, 0, []byte("abc"))[:5], true},
		{"a frame at the limit", frame(MaxFrame, 1, frameResponse, 0, nil), true},
		{"a frame over the limit", frame(MaxFrame+1, 1, frameResponse, 0, nil), false},
		{"a response, then a request", cat(frame(1, 1, frameResponse, 0, []byte("a")), frame(0, 3, 1, 0, nil)), false},
		{"stream 0", frame(0, 0, frameResponse, 0, nil), false},
		{"a payload that looks like a bad header", frame(10, 1, frameResponse, 0, frame(MaxFrame+1, 2, 9, 0, nil)), true},
	} {
		for cut := 0; cut <= len(tc.in); cut++ {
			var s frameScanner
			err := s.scan(tc.in[:cut])
			if err == nil {
				err = s.scan(tc.in[cut:])
			}
			if tc.ok != (err == nil) {
				t.Errorf("%s, cut at %d: %v", tc.name, cut, err)
				break
			}
			if err != nil && !errors.Is(err, ErrBadReply) {
				t.Errorf("%s: %v does not wrap ErrBadReply", tc.name, err)
			}
		}
	}
}

// FuzzFrameScanner checks that any bytes, in any two chunks, are scanned
// without a panic, to the same verdict as in one chunk.
func FuzzFrameScanner(f *testing.F) {
	f.Add(frame(3, 1, frameResponse, 0, []byte("abc")), uint16(4))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		var whole frameScanner
		want := whole.scan(b) == nil
		c := min(int(cut), len(b))
		var parts frameScanner
		err := parts.scan(b[:c])
		if err == nil {
			err = parts.scan(b[c:])
		}
		if got := err == nil; got != want {
			t.Fatalf("in one chunk: ok=%v; cut at %d: %v", want, c, err)
		}
	})
}
