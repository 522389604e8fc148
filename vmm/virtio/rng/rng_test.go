package rng

import (
	"bytes"
	"testing"

	"github.com/huskrt/husk/vmm/virtio"
)

func TestFill(t *testing.T) {
	tests := []struct {
		name     string
		readable []int
		writable []int
		want     uint32
	}{
		{"one buffer", nil, []int{64}, 64},
		{"readable buffers are left alone", []int{16}, []int{32, 32}, 64},
		{"capped per request", nil, []int{MaxPerRequest, 100}, MaxPerRequest},
		{"no writable buffer", []int{8}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &virtio.Chain{Readable: len(tt.readable)}
			for _, n := range append(append([]int(nil), tt.readable...), tt.writable...) {
				c.Buffers = append(c.Buffers, virtio.Buffer{Data: make([]byte, n)})
			}
			d := New()
			if got := d.fill(c); got != tt.want {
				t.Errorf("fill = %d, want %d", got, tt.want)
			}
			for _, b := range c.ReadableBuffers() {
				if !bytes.Equal(b.Data, make([]byte, len(b.Data))) {
					t.Error("a device-readable buffer was written")
				}
			}
			if w := c.WritableBuffers(); len(w) > 0 && len(w[0].Data) >= 32 && bytes.Equal(w[0].Data[:32], make([]byte, 32)) {
				t.Error("32 zero bytes: not random")
			}
			if d.Bytes() != uint64(tt.want) {
				t.Errorf("Bytes = %d", d.Bytes())
			}
		})
	}
}
