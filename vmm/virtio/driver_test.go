package virtio

import (
	"testing"

	"github.com/huskrt/husk/vmm/memory"
)

// testDriver plays the guest's driver over simulated guest memory: it lays
// out the rings, writes descriptors and publishes heads, with no KVM.
type testDriver struct {
	t        testing.TB
	mem      *memory.Memory
	cfg      Config
	availIdx uint16
}

// Simulated guest layout. RAM runs to just past the MMIO hole (mapped with
// MAP_NORESERVE, so only touched pages cost anything) so that buffers can
// straddle the hole.
const (
	testRAM      = memory.MMIOHoleStart + 16*memory.PageSize
	testDesc     = 0x1000
	testAvail    = 0x2000
	testUsed     = 0x3000
	testData     = 0x8000 // buffers live here
	testIndirect = 0x6000 // an indirect table
)

func newTestMemory(t testing.TB, size uint64) *memory.Memory {
	t.Helper()
	m, err := memory.New(size)
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newTestDriver(t testing.TB, size uint16, indirect bool) *testDriver {
	t.Helper()
	return &testDriver{t: t, mem: newTestMemory(t, testRAM), cfg: Config{
		Size: size, DescTable: testDesc, AvailRing: testAvail, UsedRing: testUsed, Indirect: indirect,
	}}
}

func (d *testDriver) queue() *Queue {
	d.t.Helper()
	q, err := New(d.mem, d.cfg)
	if err != nil {
		d.t.Fatalf("New: %v", err)
	}
	return q
}

// setDescIn writes descriptor i of the table at gpa.
func (d *testDriver) setDescIn(table uint64, i uint16, addr uint64, n uint32, flags, next uint16) {
	d.t.Helper()
	base := table + descSize*uint64(i)
	for _, err := range []error{
		d.mem.WriteUint64(base, addr),
		d.mem.WriteUint32(base+8, n),
		d.mem.WriteUint16(base+12, flags),
		d.mem.WriteUint16(base+14, next),
	} {
		if err != nil {
			d.t.Fatalf("write descriptor %d: %v", i, err)
		}
	}
}

func (d *testDriver) setDesc(i uint16, addr uint64, n uint32, flags, next uint16) {
	d.t.Helper()
	d.setDescIn(d.cfg.DescTable, i, addr, n, flags, next)
}

// publish puts heads into the available ring and then bumps its index.
func (d *testDriver) publish(heads ...uint16) {
	d.t.Helper()
	for _, h := range heads {
		slot := uint64(d.availIdx % d.cfg.Size)
		if err := d.mem.WriteUint16(d.cfg.AvailRing+4+2*slot, h); err != nil {
			d.t.Fatal(err)
		}
		d.availIdx++
	}
	d.setAvailIdx(d.availIdx)
}

func (d *testDriver) setAvailIdx(idx uint16) {
	d.t.Helper()
	if err := d.mem.WriteUint16(d.cfg.AvailRing+2, idx); err != nil {
		d.t.Fatal(err)
	}
}

// used returns the used ring's index and its element in slot i.
func (d *testDriver) used(i uint16) (idx uint16, id, n uint32) {
	d.t.Helper()
	idx, err := d.mem.ReadUint16(d.cfg.UsedRing + 2)
	if err != nil {
		d.t.Fatal(err)
	}
	elem := d.cfg.UsedRing + 4 + 8*uint64(i%d.cfg.Size)
	id, _ = d.mem.ReadUint32(elem)
	n, _ = d.mem.ReadUint32(elem + 4)
	return idx, id, n
}
