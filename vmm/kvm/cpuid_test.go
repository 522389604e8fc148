package kvm

import "testing"

func find(t *testing.T, entries []CPUIDEntry, fn, idx uint32) CPUIDEntry {
	t.Helper()
	for _, e := range entries {
		if e.Function == fn && e.Index == idx {
			return e
		}
	}
	t.Fatalf("leaf %#x.%d missing", fn, idx)
	return CPUIDEntry{}
}

func TestNormalizeCPUID(t *testing.T) {
	host := []CPUIDEntry{
		{Function: 0x1, EBX: 0x0b_04_0800 | 0x07<<24, ECX: 0x1234, EDX: edxHTT},
		{Function: 0x4, Index: 0, Flags: 1, EAX: 1<<5 | 0x1 | 0xff<<14 | 0x3f<<26}, // L1d
		{Function: 0x4, Index: 3, Flags: 1, EAX: 3<<5 | 0x3 | 0xff<<14 | 0x3f<<26}, // L3
		{Function: 0xa, EAX: 0x0804_3205, EBX: 1, EDX: 0x603},
		{Function: 0xb, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 7},
		{Function: 0xb, Index: 1, Flags: 1, EAX: 6, EBX: 64, ECX: 0x201, EDX: 7},
		{Function: 0x1f, Index: 0, Flags: 1, EBX: 2},
		{Function: 0x8000_0008, ECX: 0x7_0_3f},
		{Function: 0x8000_001e, EAX: 9, EBX: 0x0109, ECX: 0x0301},
	}
	tests := []struct {
		id, count int
		shift     uint32
	}{{0, 1, 0}, {1, 2, 1}, {2, 3, 2}, {4, 5, 3}}
	for _, tt := range tests {
		got := NormalizeCPUID(host, tt.id, tt.count)
		id, n := uint32(tt.id), uint32(tt.count)

		f := find(t, got, 0x1, 0)
		if f.EBX>>24 != id || (f.EBX>>16)&0xff != n || f.EBX&0xffff != 0x0800 {
			t.Errorf("id %d: leaf 1 EBX = %#x", tt.id, f.EBX)
		}
		if f.ECX != 0x1234|ecxHypervisor {
			t.Errorf("id %d: leaf 1 ECX = %#x, want hypervisor bit added", tt.id, f.ECX)
		}
		if (f.EDX&edxHTT != 0) != (n > 1) {
			t.Errorf("id %d: HTT = %v with %d vCPUs", tt.id, f.EDX&edxHTT != 0, n)
		}
		if l1, l3 := find(t, got, 0x4, 0), find(t, got, 0x4, 3); l1.EAX>>26 != n-1 || (l1.EAX>>14)&0xfff != 0 || (l3.EAX>>14)&0xfff != n-1 || l1.EAX&0x3fff != 1<<5|1 {
			t.Errorf("id %d: leaf 4 EAX = %#x / %#x", tt.id, l1.EAX, l3.EAX)
		}
		if pm := find(t, got, 0xa, 0); pm != (CPUIDEntry{Function: 0xa}) {
			t.Errorf("leaf 0xa = %+v, want zeroed", pm)
		}
		smt, core, end := find(t, got, 0xb, 0), find(t, got, 0xb, 1), find(t, got, 0xb, 2)
		if smt.EBX != 1 || smt.EAX != 0 || smt.ECX != 0x100 || smt.EDX != id {
			t.Errorf("id %d: leaf 0xb.0 = %+v", tt.id, smt)
		}
		if core.EBX != n || core.EAX != tt.shift || core.ECX != 0x201 || core.EDX != id {
			t.Errorf("id %d: leaf 0xb.1 = %+v", tt.id, core)
		}
		if end.EBX != 0 || (end.ECX>>8)&0xff != 0 {
			t.Errorf("leaf 0xb.2 = %+v, want the invalid level", end)
		}
		for _, e := range got {
			if e.Function == 0x1f {
				t.Errorf("leaf 0x1f kept: %+v", e)
			}
		}
		if ext := find(t, got, 0x8000_0008, 0); ext.ECX&0xff != n-1 || (ext.ECX>>12)&0xf != tt.shift || ext.ECX&^0xf0ff != 0x7_0_3f&^0xf0ff {
			t.Errorf("id %d: leaf 0x80000008 ECX = %#x", tt.id, ext.ECX)
		}
		if amd := find(t, got, 0x8000_001e, 0); amd.EAX != id || amd.EBX&0xff != id || (amd.EBX>>8)&0xff != 0 {
			t.Errorf("id %d: leaf 0x8000001e = %+v", tt.id, amd)
		}
	}
	if host[0].ECX != 0x1234 {
		t.Fatal("NormalizeCPUID modified its input")
	}
}
