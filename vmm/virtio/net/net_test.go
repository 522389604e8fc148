package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/virtio"
)

// The simulated guest: a receive and a transmit queue in guest memory, a
// driver that posts receive buffers and sends frames, and Queues over them
// for the device. The host side is a SOCK_SEQPACKET socketpair: one frame
// per read and write, as a tap gives.
const (
	testQSize  = 16
	ringsBase  = 0x1_0000 // 2 queues × 0x3000
	rxBufBase  = 0x2_0000
	rxBufSize  = HeaderSize + 1514
	txBufBase  = 0x10_0000
	testMemory = 8 << 20
)

var testMAC = [6]byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

type testGuest struct {
	t      *testing.T
	mem    *memory.Memory
	dev    *Device
	host   *os.File // the host's end of the backend
	queues [2]*virtio.Queue
	mu     sync.Mutex // serialises Do, as the transport's queue locks do

	availIdx [2]uint16
	usedSeen [2]uint16
	rx       chan []byte // frames delivered (with their header)
	txUsed   chan uint32 // used lengths of transmit chains
}

func ringAddrs(i int) (desc, avail, used uint64) {
	b := uint64(ringsBase + 0x3000*i)
	return b, b + 0x1000, b + 0x2000
}

// socketpair returns two connected SOCK_SEQPACKET ends as pollable files.
func socketpair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "dev"), os.NewFile(uintptr(fds[1]), "host")
}

func newTestGuest(t *testing.T, postRX int) *testGuest {
	t.Helper()
	devEnd, host := socketpair(t)
	g := newTestGuestWith(t, postRX, devEnd)
	g.host = host
	t.Cleanup(func() { host.Close() })
	return g
}

func newTestGuestWith(t *testing.T, postRX int, devEnd io.ReadWriteCloser) *testGuest {
	t.Helper()
	mem, err := memory.New(testMemory)
	if err != nil {
		t.Fatal(err)
	}
	g := &testGuest{t: t, mem: mem, rx: make(chan []byte, 64), txUsed: make(chan uint32, 64)}
	for i := range g.queues {
		desc, avail, used := ringAddrs(i)
		if g.queues[i], err = virtio.New(mem, virtio.Config{Size: testQSize, DescTable: desc, AvailRing: avail, UsedRing: used}); err != nil {
			t.Fatal(err)
		}
	}
	if g.dev, err = New(Config{MAC: testMAC, Backend: devEnd}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.dev.Close()
		mem.Close()
	})
	for i := range uint16(postRX) {
		g.postRX(i)
	}
	if err := g.dev.Activate(FeatureMAC, g); err != nil {
		t.Fatal(err)
	}
	return g
}

// Do implements virtio.Queues; completed chains are collected after each
// call.
func (g *testGuest) Do(i int, f func(*virtio.Queue)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g.queues[i])
	g.collectLocked(i)
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

func (g *testGuest) publishLocked(q int, head uint16) {
	_, avail, _ := ringAddrs(q)
	g.mem.WriteUint16(avail+4+2*uint64(g.availIdx[q]%testQSize), head)
	g.availIdx[q]++
	g.mem.WriteUint16(avail+2, g.availIdx[q])
}

// postRX makes receive descriptor i (one writable buffer) available and
// notifies.
func (g *testGuest) postRX(i uint16) {
	g.mu.Lock()
	g.setDesc(rxQueue, i, rxBufBase+uint64(i)*rxBufSize, rxBufSize, 2)
	g.publishLocked(rxQueue, i)
	g.mu.Unlock()
	g.dev.Notify(rxQueue)
}

func (g *testGuest) collectLocked(q int) {
	_, _, used := ringAddrs(q)
	idx, _ := g.mem.ReadUint16(used + 2)
	for ; g.usedSeen[q] != idx; g.usedSeen[q]++ {
		slot := uint64(g.usedSeen[q] % testQSize)
		id, _ := g.mem.ReadUint32(used + 4 + 8*slot)
		n, _ := g.mem.ReadUint32(used + 8 + 8*slot)
		if q == txQueue {
			g.txUsed <- n
			continue
		}
		buf := make([]byte, n)
		g.mem.ReadAt(buf, rxBufBase+uint64(id)*rxBufSize)
		g.rx <- buf
	}
}

// send transmits bufs as one chain (descriptors 0..len-1 of the transmit
// table, each buffer 64 KiB + 4 KiB apart; writable from index writable
// on, -1 for none) and notifies the device.
func (g *testGuest) send(writable int, bufs ...[]byte) {
	g.mu.Lock()
	for i, b := range bufs {
		addr := txBufBase + uint64(i)*0x11000
		g.mem.WriteAt(b, addr)
		var flags uint16
		if i+1 < len(bufs) {
			flags |= 1
		}
		if writable >= 0 && i >= writable {
			flags |= 2
		}
		g.setDesc(txQueue, uint16(i), addr, uint32(len(b)), flags)
		if i+1 < len(bufs) {
			desc, _, _ := ringAddrs(txQueue)
			g.mem.WriteUint16(desc+16*uint64(i)+14, uint16(i+1))
		}
	}
	g.publishLocked(txQueue, 0)
	g.mu.Unlock()
	g.dev.Notify(txQueue)
}

func (g *testGuest) waitTx() uint32 {
	select {
	case n := <-g.txUsed:
		return n
	case <-time.After(5 * time.Second):
		g.t.Fatal("transmit chain not completed")
		return 0
	}
}

func frame(n int) []byte {
	f := make([]byte, n)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x00})
	for i := 14; i < n; i++ {
		f[i] = byte(i)
	}
	return f
}

// readHost reads one frame from the host's end, or nil after a while.
func readHost(t *testing.T, f *os.File, wait time.Duration) []byte {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, MaxFrame+1)
	n, err := f.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func TestConfigSpaceHoldsTheMAC(t *testing.T) {
	g := newTestGuest(t, 0)
	b := make([]byte, 8)
	g.dev.ReadConfig(0, b)
	if !bytes.Equal(b[:6], testMAC[:]) || b[6] != 0 || b[7] != 0 {
		t.Errorf("config % x", b)
	}
	g.dev.ReadConfig(4, b[:4])
	if !bytes.Equal(b[:4], []byte{0x34, 0x56, 0, 0}) {
		t.Errorf("config at 4: % x", b[:4])
	}
	g.dev.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6})
	g.dev.ReadConfig(0, b[:6])
	if !bytes.Equal(b[:6], testMAC[:]) {
		t.Error("a config write changed the MAC")
	}
	if g.dev.Type() != virtio.TypeNet || g.dev.Features() != FeatureMAC || len(g.dev.QueueSizes()) != 2 {
		t.Error("identification")
	}
}

func TestTransmitReachesTheHost(t *testing.T) {
	g := newTestGuest(t, 0)
	f := frame(100)
	// Header and frame in one buffer, then split in the header's middle.
	g.send(-1, append(make([]byte, HeaderSize), f...))
	if n := g.waitTx(); n != 0 {
		t.Errorf("transmit used length %d, want 0", n)
	}
	if got := readHost(t, g.host, 5*time.Second); !bytes.Equal(got, f) {
		t.Fatalf("host got % x, want the frame", got)
	}
	g.send(-1, make([]byte, 5), make([]byte, HeaderSize-5), f[:20], f[20:])
	g.waitTx()
	if got := readHost(t, g.host, 5*time.Second); !bytes.Equal(got, f) {
		t.Fatalf("split chain: host got % x", got)
	}
	if s := g.dev.Stats(); s.TxFrames != 2 || s.TxBytes != 200 || s.TxDropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestBadTransmitsAreDropped(t *testing.T) {
	hdr := func(flags, gso byte) []byte { return append([]byte{flags, gso}, make([]byte, HeaderSize-2)...) }
	tests := []struct {
		name     string
		writable int
		bufs     [][]byte
		err      error
	}{
		{"no header", -1, [][]byte{make([]byte, HeaderSize-1)}, ErrShortHeader},
		{"header only", -1, [][]byte{make([]byte, HeaderSize)}, ErrFrameSize},
		{"frame shorter than Ethernet", -1, [][]byte{hdr(0, 0), make([]byte, MinFrame-1)}, ErrFrameSize},
		{"frame beyond MaxFrame", -1, [][]byte{hdr(0, 0), make([]byte, 0x10000), make([]byte, MaxFrame-0x10000+1)}, ErrFrameSize},
		{"NEEDS_CSUM not offered", -1, [][]byte{hdr(1, 0), frame(60)}, ErrHeader},
		{"GSO not offered", -1, [][]byte{hdr(0, 1), frame(60)}, ErrHeader},
		{"header in a writable buffer", 0, [][]byte{hdr(0, 0), frame(60)}, ErrShortHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuest(t, 0)
			c := &virtio.Chain{Readable: len(tt.bufs)}
			if tt.writable >= 0 {
				c.Readable = tt.writable
			}
			for _, b := range tt.bufs {
				c.Buffers = append(c.Buffers, virtio.Buffer{Data: b})
			}
			if _, err := parseTx(c); !errors.Is(err, tt.err) {
				t.Errorf("parseTx: %v, want %v", err, tt.err)
			}
			// Through the queue: completed with 0, nothing reaches the host,
			// and the next good frame still goes through.
			g.send(tt.writable, tt.bufs...)
			if n := g.waitTx(); n != 0 {
				t.Errorf("used length %d", n)
			}
			if got := readHost(t, g.host, 50*time.Millisecond); got != nil {
				t.Errorf("host got %d bytes from a bad chain", len(got))
			}
			if s := g.dev.Stats(); s.TxDropped != 1 {
				t.Errorf("stats %+v", s)
			}
			g.send(-1, append(make([]byte, HeaderSize), frame(60)...))
			g.waitTx()
			if got := readHost(t, g.host, 5*time.Second); len(got) != 60 {
				t.Errorf("the next good frame: %d bytes", len(got))
			}
		})
	}
}

func TestReceiveReachesTheGuest(t *testing.T) {
	g := newTestGuest(t, 4)
	f := frame(200)
	if _, err := g.host.Write(f); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-g.rx:
		want := append(make([]byte, HeaderSize), f...)
		want[10] = 1 // num_buffers
		if !bytes.Equal(got, want) {
			t.Fatalf("guest got % x", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame reached the guest")
	}
	// Too big for a receive buffer: dropped, its buffer completed with 0;
	// the next frame still arrives.
	g.host.Write(frame(rxBufSize))
	g.host.Write(frame(60))
	for _, want := range []int{0, HeaderSize + 60} {
		select {
		case got := <-g.rx:
			if len(got) != want {
				t.Errorf("used length %d, want %d", len(got), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no completion")
		}
	}
	if s := g.dev.Stats(); s.RxFrames != 2 || s.RxDropped != 1 || s.RxBytes != 260 {
		t.Errorf("stats %+v", s)
	}
}

func TestReceiveWaitsForBuffers(t *testing.T) {
	g := newTestGuest(t, 0)
	f := frame(64)
	g.host.Write(f)
	select {
	case <-g.rx:
		t.Fatal("delivered without a buffer")
	case <-time.After(100 * time.Millisecond):
	}
	g.postRX(0)
	select {
	case got := <-g.rx:
		if !bytes.Equal(got[HeaderSize:], f) {
			t.Errorf("got % x", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held frame was not delivered once a buffer came")
	}
}

func TestReceiveBeforeActivateIsDropped(t *testing.T) {
	devEnd, host := socketpair(t)
	defer host.Close()
	d, err := New(Config{MAC: testMAC, Backend: devEnd})
	if err != nil {
		t.Fatal(err)
	}
	host.Write(frame(60))
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats().RxDropped != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := d.Stats(); s.RxDropped != 1 {
		t.Errorf("stats %+v", s)
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	d.Close() // twice is fine
}

func TestCloseWakesTheReader(t *testing.T) {
	g := newTestGuest(t, 0)
	g.host.Write(frame(60)) // held: no receive buffer
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { g.dev.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Config{MAC: testMAC}); !errors.Is(err, ErrConfig) {
		t.Errorf("no backend: %v", err)
	}
	a, b := socketpair(t)
	defer a.Close()
	defer b.Close()
	if _, err := New(Config{MAC: [6]byte{1}, Backend: a}); !errors.Is(err, ErrConfig) {
		t.Errorf("multicast MAC: %v", err)
	}
}

// TestTap exchanges a frame with a tap device in a network namespace the
// test makes (needs root; skipped otherwise), opened by name and, as a
// shim hands it to its VMM, opened elsewhere and passed in (TapFile).
func TestTap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and a tap")
	}
	for _, viaFile := range []bool{false, true} {
		t.Run("file="+strconv.FormatBool(viaFile), func(t *testing.T) { testTap(t, viaFile) })
	}
}

func testTap(t *testing.T, viaFile bool) {
	done := make(chan struct{})
	var testErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is left in the new namespace and dies with the
		// goroutine (not unlocked).
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			testErr = err
			return
		}
		testErr = tapExchange(t, viaFile)
	}()
	<-done
	if errors.Is(testErr, syscall.EPERM) || errors.Is(testErr, os.ErrNotExist) {
		t.Skip(testErr)
	}
	if testErr != nil {
		t.Fatal(testErr)
	}
}

const testEtherType = 0x88b5 // IEEE local experimental

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// tapExchange, in a fresh network namespace: a tap for the device, up,
// and an AF_PACKET socket on it standing for the host's network stack. A
// frame the guest sends arrives on the interface; a frame sent out of the
// interface reaches the guest.
func tapExchange(t *testing.T, viaFile bool) error {
	tap, err := OpenTap("husktap0")
	if err != nil {
		return err
	}
	if viaFile {
		// The opener's descriptor is made blocking (as exec's ExtraFiles
		// and Fd do) and closed: the device's duplicate still works.
		unix.SetNonblock(int(tap.Fd()), false)
		dup, err := TapFile(tap)
		tap.Close()
		if err != nil {
			return err
		}
		var fl int
		if sc, err := dup.SyscallConn(); err == nil {
			sc.Control(func(fd uintptr) { fl, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		}
		if fl&unix.O_NONBLOCK == 0 {
			return errors.New("TapFile's file is blocking")
		}
		tap = dup
	}
	g := newTestGuestWith(t, 4, tap)
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, _ := unix.NewIfreq("husktap0")
	ifr.SetUint16(unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return err
	}
	ifi, err := net.InterfaceByName("husktap0")
	if err != nil {
		return err
	}
	p, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return err
	}
	defer unix.Close(p)
	if err := unix.Bind(p, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return err
	}
	unix.SetsockoptTimeval(p, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})

	out := frame(80)
	binary.BigEndian.PutUint16(out[12:], testEtherType)
	g.send(-1, append(make([]byte, HeaderSize), out...))
	g.waitTx()
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(p, buf, 0)
		if err != nil {
			return errors.Join(errors.New("the guest's frame never reached the tap"), err)
		}
		if n >= 14 && binary.BigEndian.Uint16(buf[12:]) == testEtherType {
			if !bytes.Equal(buf[:n], out) {
				return errors.New("the tap saw a different frame")
			}
			break
		}
	}
	in := frame(90)
	copy(in, testMAC[:])
	binary.BigEndian.PutUint16(in[12:], testEtherType)
	if err := unix.Sendto(p, in, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}); err != nil {
		return err
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-g.rx:
			if len(got) > HeaderSize && binary.BigEndian.Uint16(got[HeaderSize+12:]) == testEtherType {
				if !bytes.Equal(got[HeaderSize:], in) {
					return errors.New("the guest got a different frame")
				}
				return nil
			}
		case <-deadline:
			return errors.New("the host's frame never reached the guest")
		}
	}
}
