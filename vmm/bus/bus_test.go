package bus

import (
	"bytes"
	"errors"
	"testing"
)

// recorder remembers the last access.
type recorder struct {
	name    string
	offset  uint64
	written []byte
	err     error
}

func (r *recorder) Read(offset uint64, data []byte) {
	r.offset = offset
	for i := range data {
		data[i] = byte(offset) + byte(i)
	}
}

func (r *recorder) Write(offset uint64, data []byte) error {
	r.offset, r.written = offset, append([]byte(nil), data...)
	return r.err
}

func TestDispatch(t *testing.T) {
	var b Bus
	uart, pm := &recorder{name: "uart"}, &recorder{name: "pm", err: errors.New("power off")}
	if err := b.Add(0x3f8, 8, uart); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(0x600, 1, pm); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		addr   uint64
		size   int
		dev    *recorder // nil: unclaimed
		offset uint64
	}{
		{"first byte", 0x3f8, 1, uart, 0},
		{"last byte", 0x3ff, 1, uart, 7},
		{"word inside", 0x3fc, 4, uart, 4},
		{"straddles the end", 0x3fe, 4, nil, 0},
		{"before", 0x3f7, 1, nil, 0},
		{"after", 0x400, 1, nil, 0},
		{"one-byte device", 0x600, 1, pm, 0},
		{"wider than the device", 0x600, 2, nil, 0},
		{"top of the address space", ^uint64(0), 1, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := make([]byte, tt.size)
			claimed := b.Read(tt.addr, data)
			if claimed != (tt.dev != nil) {
				t.Fatalf("Read claimed = %v", claimed)
			}
			if tt.dev == nil {
				if !bytes.Equal(data, bytes.Repeat([]byte{0xff}, tt.size)) {
					t.Errorf("unclaimed read = % x, want all ones", data)
				}
				if ok, err := b.Write(tt.addr, data); ok || err != nil {
					t.Errorf("unclaimed write = %v, %v", ok, err)
				}
				return
			}
			if tt.dev.offset != tt.offset || data[0] != byte(tt.offset) {
				t.Errorf("read reached offset %d (data % x), want %d", tt.dev.offset, data, tt.offset)
			}
			ok, err := b.Write(tt.addr, []byte{0xaa})
			if !ok || !errors.Is(err, tt.dev.err) || tt.dev.offset != tt.offset {
				t.Errorf("write = %v, %v at offset %d", ok, err, tt.dev.offset)
			}
		})
	}
}

func TestAddRejectsOverlapsAndEmptyRanges(t *testing.T) {
	var b Bus
	d := &recorder{}
	for _, base := range []uint64{0x100, 0x300, 0x200} {
		if err := b.Add(base, 0x100, d); err != nil {
			t.Fatalf("Add(%#x): %v", base, err)
		}
	}
	for _, r := range []struct{ base, size uint64 }{
		{0x100, 0x100}, {0x1ff, 2}, {0x0, 0x101}, {0x3ff, 1}, {0x50, 0x1000},
	} {
		if err := b.Add(r.base, r.size, d); !errors.Is(err, ErrOverlap) {
			t.Errorf("Add(%#x, %#x) = %v, want ErrOverlap", r.base, r.size, err)
		}
	}
	if err := b.Add(0x1000, 0, d); err == nil {
		t.Error("empty range accepted")
	}
	if err := b.Add(^uint64(0), 2, d); err == nil {
		t.Error("wrapping range accepted")
	}
	if err := b.Add(0x400, 0x10, d); err != nil {
		t.Errorf("adjacent range: %v", err)
	}
}
