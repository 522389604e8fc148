package memory

import (
	"errors"
	"math"
	"testing"
)

func newMem(t testing.TB, size uint64) *Memory {
	t.Helper()
	m, err := New(size)
	if err != nil {
		t.Fatalf("New(%#x): %v", size, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

func TestNewRejectsBadSizes(t *testing.T) {
	for _, size := range []uint64{0, 1, PageSize + 1, MaxSize + PageSize, math.MaxUint64} {
		if _, err := New(size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("New(%#x) = %v, want ErrInvalidSize", size, err)
		}
	}
}

func TestLayoutSplitsAroundTheMMIOHole(t *testing.T) {
	tests := []struct {
		name string
		size uint64
		want []Region // Host left nil: compared by GPA and length
		lens []uint64
	}{
		{"small", 1 << 20, []Region{{GPA: 0}}, []uint64{1 << 20}},
		{"exactly below the hole", MMIOHoleStart, []Region{{GPA: 0}}, []uint64{MMIOHoleStart}},
		{"spills above 4 GiB", MMIOHoleStart + 2*PageSize, []Region{{GPA: 0}, {GPA: MMIOHoleEnd}}, []uint64{MMIOHoleStart, 2 * PageSize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem(t, tt.size)
			got := m.Regions()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d regions, want %d", len(got), len(tt.want))
			}
			for i, r := range got {
				if r.GPA != tt.want[i].GPA || uint64(len(r.Host)) != tt.lens[i] {
					t.Errorf("region %d = [%#x, +%#x), want [%#x, +%#x)", i, r.GPA, len(r.Host), tt.want[i].GPA, tt.lens[i])
				}
			}
			if m.Size() != tt.size {
				t.Errorf("Size() = %#x, want %#x", m.Size(), tt.size)
			}
		})
	}
}

func TestSliceBounds(t *testing.T) {
	size := MMIOHoleStart + 2*PageSize
	m := newMem(t, size)
	tests := []struct {
		name   string
		gpa, n uint64
		ok     bool
	}{
		{"first byte", 0, 1, true},
		{"zero length inside", 100, 0, true},
		{"last byte below hole", MMIOHoleStart - 1, 1, true},
		{"straddles hole start", MMIOHoleStart - 1, 2, false},
		{"inside hole", MMIOHoleStart, 1, false},
		{"zero length at hole", MMIOHoleStart, 0, false},
		{"hole end", MMIOHoleEnd, 2 * PageSize, true},
		{"past high RAM", MMIOHoleEnd + 2*PageSize - 1, 2, false},
		{"above all RAM", 1 << 50, 1, false},
		{"length wraps 2^64", 16, math.MaxUint64, false},
		{"address wraps 2^64", math.MaxUint64, 2, false},
		{"huge length", 0, MaxSize, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := m.Slice(tt.gpa, tt.n)
			if tt.ok {
				if err != nil {
					t.Fatalf("Slice(%#x, %#x): %v", tt.gpa, tt.n, err)
				}
				if uint64(len(b)) != tt.n || uint64(cap(b)) != tt.n {
					t.Fatalf("len %d cap %d, want %d", len(b), cap(b), tt.n)
				}
				return
			}
			if !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("Slice(%#x, %#x) = %v, want ErrOutOfRange", tt.gpa, tt.n, err)
			}
			if m.Contains(tt.gpa, tt.n) {
				t.Fatalf("Contains(%#x, %#x) = true", tt.gpa, tt.n)
			}
		})
	}
}

func TestReadWriteRoundTripLittleEndian(t *testing.T) {
	m := newMem(t, 1<<20)
	if err := m.WriteUint64(0x1000, 0x0102030405060708); err != nil {
		t.Fatal(err)
	}
	b, _ := m.Slice(0x1000, 8)
	if b[0] != 0x08 || b[7] != 0x01 {
		t.Fatalf("bytes % x: not little-endian", b)
	}
	if v, err := m.ReadUint32(0x1000); err != nil || v != 0x05060708 {
		t.Fatalf("ReadUint32 = %#x, %v", v, err)
	}
	if v, err := m.ReadUint16(0x1006); err != nil || v != 0x0102 {
		t.Fatalf("ReadUint16 = %#x, %v", v, err)
	}
	if err := m.WriteUint16(0x2000, 0xbeef); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteUint32(0x2004, 0xcafef00d); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 8)
	if err := m.ReadAt(p, 0x2000); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteAt(p, 0x3000); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.ReadUint64(0x3000); v != 0xcafef00d_0000beef {
		t.Fatalf("copied word = %#x", v)
	}
}

func TestAccessorsFailCleanlyOutOfRange(t *testing.T) {
	m := newMem(t, PageSize)
	end := uint64(PageSize)
	checks := map[string]error{}
	_, checks["ReadUint16"] = m.ReadUint16(end - 1)
	_, checks["ReadUint32"] = m.ReadUint32(end - 3)
	_, checks["ReadUint64"] = m.ReadUint64(math.MaxUint64 - 3)
	checks["WriteUint16"] = m.WriteUint16(end, 1)
	checks["WriteUint32"] = m.WriteUint32(end-2, 1)
	checks["WriteUint64"] = m.WriteUint64(end-4, 1)
	checks["ReadAt"] = m.ReadAt(make([]byte, 2), end-1)
	checks["WriteAt"] = m.WriteAt(make([]byte, 2), end-1)
	_, checks["LoadUint16Acquire"] = m.LoadUint16Acquire(end)
	_, checks["LoadUint32Acquire"] = m.LoadUint32Acquire(end)
	checks["StoreUint32Release"] = m.StoreUint32Release(end, 1)
	for name, err := range checks {
		if !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s: %v, want ErrOutOfRange", name, err)
		}
	}
}

func TestAtomicAccesses(t *testing.T) {
	m := newMem(t, PageSize)
	if err := m.WriteUint32(0x10, 0xaaaa_bbbb); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		gpa  uint64
		want uint16
	}{{0x10, 0xbbbb}, {0x12, 0xaaaa}} {
		if v, err := m.LoadUint16Acquire(tt.gpa); err != nil || v != tt.want {
			t.Errorf("LoadUint16Acquire(%#x) = %#x, %v; want %#x", tt.gpa, v, err, tt.want)
		}
	}
	// The last 2-aligned uint16 of RAM: its 4-aligned word is still RAM.
	if err := m.WriteUint16(PageSize-2, 0x1234); err != nil {
		t.Fatal(err)
	}
	if v, err := m.LoadUint16Acquire(PageSize - 2); err != nil || v != 0x1234 {
		t.Errorf("LoadUint16Acquire(last) = %#x, %v", v, err)
	}
	if err := m.StoreUint32Release(0x20, 0x0102_0304); err != nil {
		t.Fatal(err)
	}
	if v, err := m.LoadUint32Acquire(0x20); err != nil || v != 0x0102_0304 {
		t.Errorf("LoadUint32Acquire = %#x, %v", v, err)
	}
	for name, err := range map[string]error{
		"load16":  func() error { _, err := m.LoadUint16Acquire(1); return err }(),
		"load32":  func() error { _, err := m.LoadUint32Acquire(2); return err }(),
		"store32": m.StoreUint32Release(6, 0),
	} {
		if !errors.Is(err, ErrMisaligned) {
			t.Errorf("%s: %v, want ErrMisaligned", name, err)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	m, err := New(PageSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Slice(0, 1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Slice after Close = %v, want ErrOutOfRange", err)
	}
}
