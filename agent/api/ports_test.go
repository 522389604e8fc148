package api

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestStreamHeader(t *testing.T) {
	valid := func(id byte) []byte {
		return []byte{'H', 'S', 'K', '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, id}
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		id      uint64
		wantErr error // nil: want success
	}{
		{"id 1", valid(1), 1, nil},
		{"big-endian id", []byte("HSK1\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08"), 0x0102030405060708, nil},
		{"largest id", []byte("HSK1\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), ^uint64(0), nil},
		{"id 0", valid(0), 0, ErrBadStreamHeader},
		{"wrong magic", append([]byte("HSK2"), valid(1)[4:]...), 0, ErrBadStreamHeader},
		{"lower-case magic", append([]byte("hsk1"), valid(1)[4:]...), 0, ErrBadStreamHeader},
		{"reserved byte set", []byte("HSK1\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01"), 0, ErrBadStreamHeader},
		{"empty", nil, 0, io.EOF},
		{"short", valid(1)[:15], 0, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.wantErr == nil {
				in = append(in[:len(in):len(in)], "rest"...)
			}
			r := bytes.NewReader(in)
			id, err := ReadStreamHeader(r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadStreamHeader = %d, %v; want an error wrapping %v", id, err, tc.wantErr)
				}
				return
			}
			if err != nil || id != tc.id {
				t.Fatalf("ReadStreamHeader = %#x, %v; want %#x", id, err, tc.id)
			}
			// The header is read exactly: what follows is the stream's.
			if rest, _ := io.ReadAll(r); string(rest) != "rest" {
				t.Fatalf("after the header: %q, want %q", rest, "rest")
			}
			var buf bytes.Buffer
			if err := WriteStreamHeader(&buf, tc.id); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), tc.in) {
				t.Fatalf("WriteStreamHeader(%#x) = % x, want % x", tc.id, buf.Bytes(), tc.in)
			}
		})
	}
}

func TestWriteStreamHeaderRefusesIDZero(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStreamHeader(&buf, 0); !errors.Is(err, ErrBadStreamHeader) {
		t.Fatalf("WriteStreamHeader(0) = %v, want ErrBadStreamHeader", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes for a refused header", buf.Len())
	}
}

func TestNewStreamIDIsNonZeroAndVaries(t *testing.T) {
	seen := make(map[uint64]bool)
	for range 64 {
		id := NewStreamID()
		if id == 0 {
			t.Fatal("NewStreamID returned 0")
		}
		seen[id] = true
	}
	if len(seen) < 64 {
		t.Fatalf("64 calls gave %d distinct ids", len(seen))
	}
}

// FuzzStreamHeader checks that any bytes either give a valid id that
// writes back to the same 16 bytes, or an error; never a panic.
func FuzzStreamHeader(f *testing.F) {
	f.Add([]byte("HSK1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add([]byte("HSK1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("HSK1\x00\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("HSK"))
	f.Fuzz(func(t *testing.T, in []byte) {
		id, err := ReadStreamHeader(bytes.NewReader(in))
		if err != nil {
			if id != 0 {
				t.Fatalf("error %v with id %d", err, id)
			}
			return
		}
		if id == 0 {
			t.Fatal("id 0 accepted")
		}
		var buf bytes.Buffer
		if err := WriteStreamHeader(&buf, id); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in[:StreamHeaderSize]) {
			t.Fatalf("read % x as %#x, which writes as % x", in[:StreamHeaderSize], id, buf.Bytes())
		}
	})
}
