package machine

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/virtio"
)

// Test guests run from guestEntry in 1 MiB of RAM; out 0xf4 ends them.
const (
	guestEntry   = 0x10000
	testRAM      = 1 << 20
	testDonePort = 0xf4
	// testTimeout bounds a guest run: this machine's /dev/kvm emulates
	// each instruction (~400 ns), real KVM is far faster; a guest that
	// hangs must fail the test, not the suite.
	testTimeout = 30 * time.Second
)

// access is one I/O or MMIO exit as the handler saw it.
type access struct {
	mmio  bool
	addr  uint64
	write bool
	size  int
	value uint64 // written by the guest, or answered to it
}

// newMachine returns a one-vCPU machine with guest g loaded and vCPU 0 set
// to enter it in long mode, or skips the test when /dev/kvm cannot be
// opened. Any other failure fails the test: never a silent pass.
func newMachine(t *testing.T, g guest) *Machine {
	t.Helper()
	return newMachineN(t, g, 1)
}

func newMachineN(t *testing.T, g guest, vcpus int) *Machine {
	t.Helper()
	m, err := New(Config{MemorySize: testRAM, VCPUs: vcpus})
	if errors.Is(err, kvm.ErrUnavailable) {
		t.Skipf("needs KVM: %v", err)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := m.Memory().WriteAt(g.code, guestEntry); err != nil {
		t.Fatal(err)
	}
	if err := m.BootLongMode(guestEntry); err != nil {
		t.Fatalf("BootLongMode: %v", err)
	}
	return m
}

// run runs m until the guest writes testDonePort, recording every other
// exit. answer supplies the value of each guest read, by address.
func run(t *testing.T, m *Machine, answer map[uint64]uint64, onExit func(access)) []access {
	t.Helper()
	var seen []access
	h := func(cpu int, e kvm.Exit) error {
		if e.Reason == kvm.ExitIO && e.Addr == testDonePort {
			return ErrPowerOff
		}
		a := access{mmio: e.Reason == kvm.ExitMMIO, addr: e.Addr, write: e.Write, size: len(e.Data)}
		var b [8]byte
		if e.Write {
			copy(b[:], e.Data)
			a.value = binary.LittleEndian.Uint64(b[:])
		} else {
			a.value = answer[e.Addr]
			binary.LittleEndian.PutUint64(b[:], a.value)
			copy(e.Data, b[:])
		}
		seen = append(seen, a)
		if onExit != nil {
			onExit(a)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := m.Run(ctx, h); err != nil {
		t.Fatalf("Run: %v (exits so far: %+v)", err, seen)
	}
	return seen
}

func checkAccesses(t *testing.T, got, want []access) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("exits:\n got %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("exit %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGuestEntersLongMode(t *testing.T) {
	m := newMachine(t, longModeGuest)
	got := run(t, m, nil, nil)
	checkAccesses(t, got, []access{{addr: 0x10, write: true, size: 4, value: 0x3344_5566}})
	s, err := m.vcpus[0].Sregs()
	if err != nil {
		t.Fatal(err)
	}
	const eferLMA, cr0PG = 1 << 10, 1 << 31
	if s.EFER&eferLMA == 0 || s.CR0&cr0PG == 0 || s.CS.L != 1 {
		t.Fatalf("after the run: EFER %#x CR0 %#x CS.L %d, want long mode", s.EFER, s.CR0, s.CS.L)
	}
}

func TestGuestPortIOExits(t *testing.T) {
	m := newMachine(t, portIOGuest)
	got := run(t, m, map[uint64]uint64{0x3f8: 0x0102_0304}, nil)
	checkAccesses(t, got, []access{
		{addr: 0x3f8, write: true, size: 1, value: 'H'},
		{addr: 0x80, write: true, size: 4, value: 0xdead_beef},
		{addr: 0x3f8, write: false, size: 4, value: 0x0102_0304},
		{addr: 0x81, write: true, size: 4, value: 0x0102_0305},
		{addr: 0x82, write: true, size: 2, value: 0x4242},
	})
}

func TestGuestMMIOExits(t *testing.T) {
	m := newMachine(t, mmioGuest)
	got := run(t, m, map[uint64]uint64{0xd000_0020: 0x1122_3344}, nil)
	checkAccesses(t, got, []access{
		{mmio: true, addr: 0xd000_0010, write: true, size: 4, value: 0xcafe_f00d},
		{mmio: true, addr: 0xd000_0020, write: false, size: 4, value: 0x1122_3344},
		{mmio: true, addr: 0xd000_0028, write: true, size: 8, value: 0x1122_3345},
		{mmio: true, addr: 0xd000_0031, write: true, size: 1, value: 7},
	})
}

func TestIOEventFDSignalsWithoutAnExit(t *testing.T) {
	const notify = 0xd000_0050
	tests := []struct {
		name  string
		event kvm.IOEvent
		count uint64   // eventfd counter after the run
		exits []access // what still reached userspace
	}{
		{"every write", kvm.IOEvent{Addr: notify, Len: 4}, 2, nil},
		{"data match", kvm.IOEvent{Addr: notify, Len: 4, DataMatch: true, Data: 2}, 1,
			[]access{{mmio: true, addr: notify, write: true, size: 4, value: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, ioEventGuest)
			efd, err := kvm.NewEventFD()
			if err != nil {
				t.Fatal(err)
			}
			defer efd.Close()
			if err := m.VM().RegisterIOEvent(tt.event, efd); err != nil {
				t.Fatal(err)
			}
			got := run(t, m, nil, nil)
			checkAccesses(t, got, tt.exits)
			n, err := efd.Wait() // the guest is done: the count is final
			if err != nil || n != tt.count {
				t.Fatalf("eventfd count = %d, %v; want %d", n, err, tt.count)
			}
			if err := m.VM().UnregisterIOEvent(tt.event, efd); err != nil {
				t.Fatalf("UnregisterIOEvent: %v", err)
			}
		})
	}
}

func TestIRQFDInjectsAnInterrupt(t *testing.T) {
	const (
		gsi     = 4
		vector  = 0x20 + gsi // where the guest puts the PIC's IRQ 4
		handler = guestEntry + 0x40
		idtAddr = 0x3000
		ready   = 0x90
		report  = 0x91
	)
	m := newMachine(t, irqGuest)
	// An IDT whose only present gate sends the vector to the handler.
	gate := make([]byte, 16)
	h := uint64(handler)
	binary.LittleEndian.PutUint16(gate[0:], uint16(h))
	binary.LittleEndian.PutUint16(gate[2:], 0x08) // the boot code segment
	gate[5] = 0x8e                                // present, DPL 0, 64-bit interrupt gate
	binary.LittleEndian.PutUint16(gate[6:], uint16(h>>16))
	binary.LittleEndian.PutUint32(gate[8:], uint32(h>>32))
	if err := m.Memory().WriteAt(gate, idtAddr+16*vector); err != nil {
		t.Fatal(err)
	}
	s, err := m.vcpus[0].Sregs()
	if err != nil {
		t.Fatal(err)
	}
	s.IDT = kvm.DTable{Base: idtAddr, Limit: 16*256 - 1}
	if err := m.vcpus[0].SetSregs(&s); err != nil {
		t.Fatal(err)
	}

	efd, err := kvm.NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	defer efd.Close()
	if err := m.VM().RegisterIRQFD(efd, gsi); err != nil {
		t.Fatal(err)
	}
	// Signal from another goroutine once the guest is ready, as a device
	// would: the vCPU is then halted inside KVM, and only the interrupt
	// can wake it.
	signalled := make(chan error, 1)
	got := run(t, m, nil, func(a access) {
		if a.addr == ready {
			go func() { signalled <- efd.Signal() }()
		}
	})
	if err := <-signalled; err != nil {
		t.Fatal(err)
	}
	checkAccesses(t, got, []access{
		{addr: ready, write: true, size: 1, value: 0xef},
		{addr: report, write: true, size: 4, value: 0x1234},
	})
	if err := m.VM().UnregisterIRQFD(efd, gsi); err != nil {
		t.Fatalf("UnregisterIRQFD: %v", err)
	}
}

func TestGuestDrivenVirtqueueRoundTrip(t *testing.T) {
	const notify = 0xd000_0050
	m := newMachine(t, virtqGuest)
	q, err := virtio.New(m.Memory(), virtio.Config{Size: 4, DescTable: 0x20000, AvailRing: 0x20040, UsedRing: 0x21000})
	if err != nil {
		t.Fatal(err)
	}
	efd, err := kvm.NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	defer efd.Close()
	if err := m.VM().RegisterIOEvent(kvm.IOEvent{Addr: notify, Len: 4}, efd); err != nil {
		t.Fatal(err)
	}

	// The device: woken by the queue notification, it answers "ping"
	// with "pong" and completes the chain.
	device := make(chan error, 1)
	go func() {
		device <- func() error {
			if _, err := efd.Wait(); err != nil {
				return err
			}
			c, ok, err := q.Pop()
			if err != nil || !ok {
				return errors.Join(errors.New("no chain after the notification"), err)
			}
			r, w := c.ReadableBuffers(), c.WritableBuffers()
			if len(r) != 1 || string(r[0].Data) != "ping" || len(w) != 1 || len(w[0].Data) != 16 {
				return errors.New("unexpected chain shape")
			}
			copy(w[0].Data, "pong")
			return q.Push(c.Head, 4)
		}()
	}()
	got := run(t, m, nil, nil)
	select {
	case err := <-device:
		if err != nil {
			t.Fatalf("device: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("device never finished")
	}
	checkAccesses(t, got, []access{
		{addr: 0x92, write: true, size: 4, value: 0},           // used id: head 0
		{addr: 0x93, write: true, size: 4, value: 4},           // used len
		{addr: 0x94, write: true, size: 4, value: 0x676e_6f70}, // "pong"
	})
	if s := q.Stats(); s.Chains != 1 || s.Malformed != 0 {
		t.Fatalf("queue stats %+v", s)
	}
}
