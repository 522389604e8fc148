package aml

import (
	"bytes"
	"testing"
)

func TestEncodings(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"zero", Integer(0), []byte{0x00}},
		{"one", Integer(1), []byte{0x01}},
		{"byte", Integer(0xff), []byte{0x0a, 0xff}},
		{"word", Integer(0x100), []byte{0x0b, 0x00, 0x01}},
		{"dword", Integer(0xd000_0000), []byte{0x0c, 0x00, 0x00, 0x00, 0xd0}},
		{"qword", Integer(1 << 32), []byte{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
		{"string", String("LNRO0005"), []byte("\x0dLNRO0005\x00")},
		{"empty string", String(""), []byte{0x0d, 0x00}},
		{"name", Name("_UID", Integer(2)), []byte{0x08, '_', 'U', 'I', 'D', 0x0a, 0x02}},
		{"short name padded", Name("_S5", Integer(0)), []byte{0x08, '_', 'S', '5', '_', 0x00}},
		{"root path", Name(`\_S5`, Integer(0)), []byte{0x08, '\\', '_', 'S', '5', '_', 0x00}},
		{"dual path", Name(`\_SB.VR00`, Integer(0)), []byte{0x08, '\\', 0x2e, '_', 'S', 'B', '_', 'V', 'R', '0', '0', 0x00}},
		{"multi path", Name(`A.B.C`, Integer(0)), []byte{0x08, 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_', 0x00}},
		{"package", Package(Integer(5), Integer(0)), []byte{0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}},
		{"empty package", Package(), []byte{0x12, 0x02, 0x00}},
		{"buffer", Buffer([]byte{1, 2, 3}), []byte{0x11, 0x06, 0x0a, 0x03, 1, 2, 3}},
		{"device", Device("VR00", Name("_UID", Integer(0))), []byte{0x5b, 0x82, 0x0b, 'V', 'R', '0', '0', 0x08, '_', 'U', 'I', 'D', 0x00}},
		{"scope", Scope("_SB"), []byte{0x10, 0x05, '_', 'S', 'B', '_'}},
		// ASL: Memory32Fixed (ReadWrite, 0xD0000000, 0x00000200, )
		{"Memory32Fixed", Memory32Fixed(true, 0xd000_0000, 0x200), []byte{0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0xd0, 0, 2, 0, 0}},
		{"Memory32Fixed read-only", Memory32Fixed(false, 0x1000, 0x10), []byte{0x86, 0x09, 0x00, 0x00, 0, 0x10, 0, 0, 0x10, 0, 0, 0}},
		// ASL: Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 }
		{"Interrupt edge", Interrupt(InterruptFlags{Edge: true}, 5), []byte{0x89, 0x06, 0x00, 0x03, 0x01, 5, 0, 0, 0}},
		// ASL: Interrupt (ResourceConsumer, Level, ActiveLow, Shared) { 9, 10 }
		{"Interrupt level low shared", Interrupt(InterruptFlags{ActiveLow: true, Shared: true}, 9, 10), []byte{0x89, 0x0a, 0x00, 0x0d, 0x02, 9, 0, 0, 0, 10, 0, 0, 0}},
		// ASL: EisaId ("PNP0501"), EisaId ("PNP0A03")
		{"EISAID serial", EISAID("PNP0501"), []byte{0x0c, 0x41, 0xd0, 0x05, 0x01}},
		{"EISAID host bridge", EISAID("PNP0A03"), []byte{0x0c, 0x41, 0xd0, 0x0a, 0x03}},
		// ASL: IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08)
		{"IO", IO(0x3f8, 0x3f8, 0, 8), []byte{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08}},
		{"ResourceTemplate", ResourceTemplate(), []byte{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("got  % x\nwant % x", tt.got, tt.want)
			}
		})
	}
}

func TestPkgLengthBoundaries(t *testing.T) {
	tests := []struct {
		n    int // contents after the PkgLength
		want []byte
	}{
		{0, []byte{0x01}},
		{0x3e, []byte{0x3f}},              // 63 in one byte
		{0x3f, []byte{0x41, 0x04}},        // 65 = 0x41: two bytes, low nibble 1, then 4
		{0xffd, []byte{0x4f, 0xff}},       // 0xfff in two bytes
		{0xffe, []byte{0x81, 0x00, 0x01}}, // 0x1001 needs three
		{0xffffc, []byte{0x8f, 0xff, 0xff}},
		{0xffffd, []byte{0xc1, 0x00, 0x00, 0x01}},
	}
	for _, tt := range tests {
		got := pkgLength(tt.n)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("pkgLength(%#x) = % x, want % x", tt.n, got, tt.want)
		}
		// The encoded length counts the PkgLength bytes themselves.
		total := int(got[0] & 0x3f)
		if len(got) > 1 {
			total = int(got[0] & 0xf)
			for i, b := range got[1:] {
				total |= int(b) << (4 + 8*i)
			}
		}
		if total != tt.n+len(got) {
			t.Errorf("pkgLength(%#x) encodes %#x, want %#x", tt.n, total, tt.n+len(got))
		}
	}
}

func TestBadNamesPanic(t *testing.T) {
	for _, name := range []string{"", "TOOLONG", "1ABC", "a___", "A-B", `\`, "A..B"} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Name(%q) did not panic", name)
				}
			}()
			Name(name, Integer(0))
		})
	}
	for _, f := range []func(){
		func() { String("a\x00b") },
		func() { EISAID("PNP050") },
		func() { EISAID("pnp0501") },
		func() { EISAID("PNP05G1") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("bad input did not panic")
				}
			}()
			f()
		}()
	}
}
