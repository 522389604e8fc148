//go:build !husk_vmmchild

package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests play a hostile VMM process on the other end of a real
// SOCK_SEQPACKET socketpair: whatever it sends, the parent's call returns
// a clear error within the reply deadline, breaks the channel for good
// and asks for the VMM to be killed.

// fakeChild is the VMM's end of a control channel, in the test process.
type fakeChild struct {
	t *testing.T
	c *net.UnixConn
}

func newControlPair(t *testing.T) (*control, *fakeChild, *atomic.Value) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "control")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	var broken atomic.Value
	ctl := newControl(conn(fds[0]), func(err error) { broken.Store(err) })
	child := &fakeChild{t: t, c: conn(fds[1])}
	t.Cleanup(func() {
		ctl.close(errors.New("test over"))
		child.c.Close()
	})
	return ctl, child, &broken
}

// next reads the parent's next request.
func (f *fakeChild) next() *request {
	f.t.Helper()
	f.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, fds, err := readRecord(f.c, maxRequest)
	if err != nil {
		f.t.Errorf("fake child: %v", err)
		return nil
	}
	closeFDs(fds)
	var req request
	if err := decodeStrict(b, &req); err != nil {
		f.t.Errorf("fake child: %v", err)
		return nil
	}
	return &req
}

func (f *fakeChild) send(b []byte, fds ...int) {
	f.t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := f.c.WriteMsgUnix(b, oob, nil); err != nil {
		f.t.Errorf("fake child: %v", err)
	}
}

func (f *fakeChild) reply(r *reply) {
	b, _ := json.Marshal(r)
	f.send(b)
}

func TestControlRoundTrip(t *testing.T) {
	ctl, child, broken := newControlPair(t)
	go func() {
		req := child.next()
		child.reply(&reply{ID: req.ID, Stats: &childStats{Exits: map[string]uint64{"io": 1}}})
		req = child.next()
		child.reply(&reply{ID: req.ID, Error: &replyError{Code: codeNoFreeSlot, Message: "all 2 in use\x1b[31m"}})
	}()
	r, err := ctl.call(context.Background(), &request{Op: opStats}, nil, time.Second)
	if err != nil || r.Stats.Exits["io"] != 1 {
		t.Fatalf("stats: %+v, %v", r, err)
	}
	r, err = ctl.call(context.Background(), &request{Op: opAttach}, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = replyErr(opAttach, r)
	if err == nil || !strings.Contains(err.Error(), "all 2 in use?[31m") {
		t.Errorf("error reply: %v (control characters must not pass)", err)
	}
	if b := broken.Load(); b != nil {
		t.Errorf("channel broken: %v", b)
	}
}

// TestControlHostileReplies: each bad reply is an ErrProtocol error,
// returned before long, and the channel is broken (onBroken, later calls).
func TestControlHostileReplies(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		act  func(f *fakeChild, id uint64)
		want string
	}{
		{"oversized", func(f *fakeChild, id uint64) {
			f.send([]byte(fmt.Sprintf(`{"id":%d,"text":"%s"}`, id, strings.Repeat("x", maxReply))))
		}, "over 16384 bytes"},
		{"malformed", func(f *fakeChild, id uint64) { f.send([]byte(`{"id":`)) }, "malformed"},
		{"unknown field", func(f *fakeChild, id uint64) {
			f.send([]byte(fmt.Sprintf(`{"id":%d,"exploit":true}`, id)))
		}, "malformed"},
		{"two objects", func(f *fakeChild, id uint64) {
			f.send([]byte(fmt.Sprintf(`{"id":%d}{"id":%d}`, id, id)))
		}, "malformed"},
		{"wrong id", func(f *fakeChild, id uint64) { f.reply(&reply{ID: id + 1}) }, "to no request"},
		{"silence", func(f *fakeChild, id uint64) {}, "no reply to stats within"},
		{"a trickle of valid-looking replies", func(f *fakeChild, id uint64) {
			f.reply(&reply{ID: id})
			f.reply(&reply{ID: id})
		}, "to no request"},
		{"descriptors", func(f *fakeChild, id uint64) {
			b, _ := json.Marshal(&reply{ID: id})
			f.send(b, int(os.Stdin.Fd()))
		}, "descriptors in a reply"},
		{"close", func(f *fakeChild, id uint64) { f.c.Close() }, "closed its control channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl, child, broken := newControlPair(t)
			go func() {
				if req := child.next(); req != nil {
					tc.act(child, req.ID)
				}
			}()
			start := time.Now()
			_, err := ctl.call(context.Background(), &request{Op: opStats}, nil, timeout)
			// A second call, for the trickle: its reply must not be taken
			// from the extra one.
			if err == nil {
				_, err = ctl.call(context.Background(), &request{Op: opStats}, nil, timeout)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.name != "close" && !errors.Is(err, ErrProtocol) {
				t.Errorf("err = %v, want ErrProtocol", err)
			}
			if d := time.Since(start); d > 10*timeout {
				t.Errorf("took %v with a reply deadline of %v", d, timeout)
			}
			if broken.Load() == nil {
				t.Error("onBroken was not called")
			}
			if _, err2 := ctl.call(context.Background(), &request{Op: opStats}, nil, timeout); err2 == nil {
				t.Error("a call on a broken channel succeeded")
			}
		})
	}
}

// TestControlClosesPassedDescriptors: descriptors a hostile VMM sends are
// closed, not kept (nor leaked into later calls).
func TestControlClosesPassedDescriptors(t *testing.T) {
	ctl, child, _ := newControlPair(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	go func() {
		req := child.next()
		b, _ := json.Marshal(&reply{ID: req.ID})
		child.send(b, p[0])
		unix.Close(p[0]) // the parent now holds the only read end
	}()
	ctl.call(context.Background(), &request{Op: opStats}, nil, time.Second)
	// Once the parent closed its copy of the read end, writing fails.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := unix.Write(p[1], []byte("x"))
		if errors.Is(err, unix.EPIPE) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the passed descriptor is still open (write: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestControlCallerGivesUp: a caller whose context ends gets its context's
// error; the late reply is still taken for that call, and the channel
// serves the next.
func TestControlCallerGivesUp(t *testing.T) {
	ctl, child, broken := newControlPair(t)
	release := make(chan struct{})
	go func() {
		req := child.next()
		<-release
		child.reply(&reply{ID: req.ID})
		req = child.next()
		child.reply(&reply{ID: req.ID, Text: "second"})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ctl.call(ctx, &request{Op: opStats}, nil, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	close(release)
	r, err := ctl.call(context.Background(), &request{Op: opStats}, nil, 5*time.Second)
	if err != nil || r.Text != "second" {
		t.Fatalf("next call: %+v, %v", r, err)
	}
	if b := broken.Load(); b != nil {
		t.Errorf("channel broken: %v", b)
	}
}

// TestControlHammer: calls from many goroutines, answered out of order,
// each get their own reply.
func TestControlHammer(t *testing.T) {
	ctl, child, _ := newControlPair(t)
	const workers, calls = 8, 50
	go func() {
		// Replies go out in reverse order of the requests, a few at a
		// time, or whatever is held once no request has come for a while.
		var held []*request
		flush := func() {
			for i := len(held) - 1; i >= 0; i-- {
				child.reply(&reply{ID: held[i].ID, Text: held[i].Disk.Serial})
			}
			held = held[:0]
		}
		for n := 0; n < workers*calls; {
			child.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			b, _, err := readRecord(child.c, maxRequest)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				flush()
				continue
			}
			if err != nil {
				t.Errorf("fake child: %v", err)
				return
			}
			var req request
			if err := decodeStrict(b, &req); err != nil {
				t.Errorf("fake child: %v", err)
				return
			}
			n++
			if held = append(held, &req); len(held) == 3 {
				flush()
			}
		}
		flush()
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				serial := fmt.Sprintf("w%d-%d", w, i)
				r, err := ctl.call(context.Background(), &request{Op: opDetach, Disk: &diskRequest{Serial: serial}}, nil, 5*time.Second)
				if err != nil || r.Text != serial {
					t.Errorf("call %s: %+v, %v", serial, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCheckStats(t *testing.T) {
	long := strings.Repeat("x", maxSerial+1)
	for _, tc := range []struct {
		name string
		s    *childStats
		ok   bool
	}{
		{"good", &childStats{Exits: map[string]uint64{"io": 1, "mmio": 2}, Disks: []childDiskStats{{Serial: "rootfs-1"}}}, true},
		{"none", nil, false},
		{"too many disks", &childStats{Disks: []childDiskStats{{Serial: "a"}, {Serial: "b"}, {Serial: "c"}}}, false},
		{"long serial", &childStats{Disks: []childDiskStats{{Serial: long}}}, false},
		{"empty serial", &childStats{Disks: []childDiskStats{{}}}, false},
		{"odd exit name", &childStats{Exits: map[string]uint64{"io\n": 1}}, false},
		{"many exit names", &childStats{Exits: manyExits()}, false},
	} {
		if err := checkStats(tc.s, 2); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		} else if err != nil && !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", tc.name, err)
		}
	}
}

func manyExits() map[string]uint64 {
	m := map[string]uint64{}
	for i := range maxExitReasons + 1 {
		m[fmt.Sprintf("r%d", i)] = 1
	}
	return m
}

func TestTailKeepsTheLastLinesBounded(t *testing.T) {
	var tl tail
	for i := range 100 {
		fmt.Fprintf(&tl, "line %d\n", i)
	}
	tl.Write([]byte(strings.Repeat("y", 10000) + "\npartial \x00"))
	lines := strings.Split(tl.String(), "\n")
	if len(lines) != tailLines+1 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[0] != "line 81" || lines[tailLines-1] != strings.Repeat("y", tailLineLen)+"…" || lines[tailLines] != "partial ?" {
		t.Errorf("tail:\n%s", tl.String())
	}
}
