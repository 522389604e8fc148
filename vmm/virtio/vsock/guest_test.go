package vsock

import (
	"encoding/binary"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/virtio"
)

// The simulated guest: three queues in guest memory, a driver that posts
// receive buffers and sends packets, and Queues over them for the device.
const (
	testCID    = 3
	testQSize  = 64
	ringsBase  = 0x1_0000  // 3 queues × 0x3000
	rxBufBase  = 0x2_0000  // receive buffers, 4 KiB + header each
	txBufBase  = 0x10_0000 // transmit buffers, 0x11000 apart
	rxBufSize  = 4096 + hdrSize
	testMemory = 8 << 20
)

type testGuest struct {
	t      *testing.T
	mem    *memory.Memory
	dev    *Device
	uds    string
	queues [3]*virtio.Queue
	mu     sync.Mutex // serialises Do, as the transport's queue locks do

	// Driver-side ring state.
	availIdx [3]uint16
	usedSeen [3]uint16

	rx chan header // packets the device delivered, with their payloads
	rp chan []byte
}

func ringAddrs(i int) (desc, avail, used uint64) {
	b := uint64(ringsBase + 0x3000*i)
	return b, b + 0x1000, b + 0x2000
}

func newTestGuest(t *testing.T) *testGuest {
	t.Helper()
	mem, err := memory.New(testMemory)
	if err != nil {
		t.Fatal(err)
	}
	g := &testGuest{t: t, mem: mem, uds: filepath.Join(t.TempDir(), "v.sock"), rx: make(chan header, 256), rp: make(chan []byte, 256)}
	for i := range g.queues {
		desc, avail, used := ringAddrs(i)
		if g.queues[i], err = virtio.New(mem, virtio.Config{Size: testQSize, DescTable: desc, AvailRing: avail, UsedRing: used}); err != nil {
			t.Fatal(err)
		}
	}
	g.dev, err = New(Config{CID: testCID, UDSPath: g.uds})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.dev.Activate(0, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.dev.Close()
		mem.Close()
	})
	// Post every receive buffer.
	for i := range uint16(testQSize) {
		g.postRX(i)
	}
	return g
}

// Do implements virtio.Queues. Delivered receive packets are collected
// after each call.
func (g *testGuest) Do(i int, f func(*virtio.Queue)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g.queues[i])
	if i == rxQueue {
		g.collectRXLocked()
	}
	return nil
}

func (g *testGuest) setDesc(q int, i uint16, addr uint64, n uint32, flags uint16) {
	desc, _, _ := ringAddrs(q)
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, addr)
	binary.LittleEndian.PutUint32(b[8:], n)
	binary.LittleEndian.PutUint16(b[12:], flags)
	g.mem.WriteAt(b, desc+16*uint64(i))
}

func (g *testGuest) publish(q int, head uint16) {
	_, avail, _ := ringAddrs(q)
	g.mem.WriteUint16(avail+4+2*uint64(g.availIdx[q]%testQSize), head)
	g.availIdx[q]++
	g.mem.WriteUint16(avail+2, g.availIdx[q])
}

// postRX makes receive descriptor i available again.
func (g *testGuest) postRX(i uint16) {
	g.setDesc(rxQueue, i, rxBufBase+uint64(i)*rxBufSize, rxBufSize, 2)
	g.publish(rxQueue, i)
}

// collectRXLocked reads the used receive ring, hands each packet to the
// test and reposts its buffer.
func (g *testGuest) collectRXLocked() {
	_, _, used := ringAddrs(rxQueue)
	idx, _ := g.mem.ReadUint16(used + 2)
	for ; g.usedSeen[rxQueue] != idx; g.usedSeen[rxQueue]++ {
		slot := uint64(g.usedSeen[rxQueue] % testQSize)
		id, _ := g.mem.ReadUint32(used + 4 + 8*slot)
		n, _ := g.mem.ReadUint32(used + 8 + 8*slot)
		buf := make([]byte, n)
		g.mem.ReadAt(buf, rxBufBase+uint64(id)*rxBufSize)
		if n >= hdrSize {
			h := decodeHeader(buf)
			g.rx <- h
			g.rp <- buf[hdrSize:]
		}
		g.postRX(uint16(id))
	}
}

// send transmits a packet from the guest, header and payload in two
// descriptors, and notifies the device.
func (g *testGuest) send(h header, payload []byte) {
	g.mu.Lock()
	h.len = uint32(len(payload))
	var raw [hdrSize]byte
	h.encode(raw[:])
	slot := uint16(g.availIdx[txQueue] % testQSize)
	hdrAt := txBufBase + uint64(slot)*0x1_1000
	g.mem.WriteAt(raw[:], hdrAt)
	g.mem.WriteAt(payload, hdrAt+hdrSize)
	desc := uint16(2 * (slot % (testQSize / 2)))
	g.setDesc(txQueue, desc, hdrAt, hdrSize, 1) // NEXT
	descTable, _, _ := ringAddrs(txQueue)
	g.mem.WriteUint16(descTable+16*uint64(desc)+14, desc+1)
	g.setDesc(txQueue, desc+1, hdrAt+hdrSize, uint32(len(payload)), 0)
	g.publish(txQueue, desc)
	g.mu.Unlock()
	g.dev.Notify(txQueue)
}

// guestHeader is a header from the guest's port to the host's.
func guestHeader(op uint16, guestPort, hostPort uint32) header {
	return header{srcCID: testCID, dstCID: HostCID, srcPort: guestPort, dstPort: hostPort,
		typ: typeStream, op: op, bufAlloc: 1 << 20}
}

// expect waits for the next packet the device delivers and checks its
// operation.
func (g *testGuest) expect(op uint16) (header, []byte) {
	g.t.Helper()
	select {
	case h := <-g.rx:
		p := <-g.rp
		if h.op != op {
			g.t.Fatalf("device sent op %d (%+v, %q), want %d", h.op, h, p, op)
		}
		if h.srcCID != HostCID || h.dstCID != testCID || h.typ != typeStream || h.bufAlloc != ConnBuffer || int(h.len) != len(p) {
			g.t.Fatalf("bad header %+v with %d payload bytes", h, len(p))
		}
		return h, p
	case <-time.After(5 * time.Second):
		g.t.Fatalf("no packet from the device, want op %d", op)
		return header{}, nil
	}
}

// expectSkipping waits for a packet with op, passing over packets with the
// skip operations (credit updates the device may send first).
func (g *testGuest) expectSkipping(op uint16, skip ...uint16) header {
	g.t.Helper()
	for {
		select {
		case h := <-g.rx:
			p := <-g.rp
			if h.op == op {
				return h
			}
			if !slices.Contains(skip, h.op) {
				g.t.Fatalf("device sent op %d (%+v, %q), want %d", h.op, h, p, op)
			}
		case <-time.After(5 * time.Second):
			g.t.Fatalf("no packet from the device, want op %d", op)
		}
	}
}

// expectNothing checks that the device stays quiet for a moment.
func (g *testGuest) expectNothing() {
	g.t.Helper()
	select {
	case h := <-g.rx:
		g.t.Fatalf("unexpected packet %+v", h)
	case <-time.After(100 * time.Millisecond):
	}
}

// readAll reads exactly n bytes from c.
func readAll(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	for got := 0; got < n; {
		m, err := c.Read(b[got:])
		if err != nil {
			t.Fatalf("read %d of %d bytes: %v", got, n, err)
		}
		got += m
	}
	return b
}
