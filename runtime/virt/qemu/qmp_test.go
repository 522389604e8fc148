package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// fakeQEMU is the QEMU end of a QMP socketpair, scripted by a test.
type fakeQEMU struct {
	t    *testing.T
	conn *net.UnixConn
	r    *bufio.Reader
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

func newFakeQEMU(t *testing.T) (*fakeQEMU, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "qmp")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	q, us := conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { q.Close(); us.Close() })
	return &fakeQEMU{t: t, conn: q, r: bufio.NewReader(q)}, us
}

func (f *fakeQEMU) send(line string) {
	if _, err := f.conn.Write([]byte(line + "\n")); err != nil {
		f.t.Error(err)
	}
}

// command reads the next command: its name, id and arguments.
func (f *fakeQEMU) command() (name, id string, args map[string]any) {
	line, err := f.r.ReadString('\n')
	if err != nil {
		f.t.Errorf("reading a command: %v", err)
		return "", "", nil
	}
	var m struct {
		Execute   string         `json:"execute"`
		ID        string         `json:"id"`
		Arguments map[string]any `json:"arguments"`
	}
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		f.t.Errorf("command %q: %v", line, err)
	}
	return m.Execute, m.ID, m.Arguments
}

// negotiate plays QEMU's part of dialQMP.
func (f *fakeQEMU) negotiate() {
	f.send(greeting)
	name, id, _ := f.command()
	if name != "qmp_capabilities" {
		f.t.Errorf("first command %q, want qmp_capabilities", name)
	}
	f.send(`{"return": {}, "id": "` + id + `"}`)
}

// dial runs dialQMP against f in the background.
func dial(t *testing.T, f *fakeQEMU, us *net.UnixConn, timeout time.Duration, onEvent func(qmpEvent), onBroken ...func(error)) *qmpClient {
	t.Helper()
	done := make(chan struct{})
	go func() { f.negotiate(); close(done) }()
	var broken func(error)
	if len(onBroken) > 0 {
		broken = onBroken[0]
	}
	c, err := dialQMP(context.Background(), us, timeout, onEvent, broken)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func TestQMPCommandReplyAndError(t *testing.T) {
	f, us := newFakeQEMU(t)
	c := dial(t, f, us, 5*time.Second, nil)
	go func() {
		name, id, args := f.command()
		if name != "device_del" || args["id"] != "blk0" {
			t.Errorf("got %s %v", name, args)
		}
		f.send(`{"return": {"x": 1}, "id": "` + id + `"}`)
		_, id, _ = f.command()
		f.send(`{"error": {"class": "DeviceNotFound", "desc": "Device 'blk9' not found\u001b[2J"}, "id": "` + id + `"}`)
		_, id, _ = f.command()
		f.send(`{"error": {"class": "GenericError", "desc": "no"}, "id": "` + id + `"}`)
	}()
	ret, err := c.execute(context.Background(), "device_del", map[string]any{"id": "blk0"}, nil)
	if err != nil || string(ret) != `{"x": 1}` {
		t.Fatalf("return %s, %v", ret, err)
	}
	_, err = c.execute(context.Background(), "device_del", map[string]any{"id": "blk9"}, nil)
	var qe *qmpError
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.As(err, &qe) {
		t.Errorf("DeviceNotFound: %v, want not found", err)
	}
	if strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("QEMU's escape reached the error: %q", err)
	}
	if _, err = c.execute(context.Background(), "x", nil, nil); err == nil || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GenericError: %v", err)
	}
}

// TestQMPHostilePeer: a QMP peer that breaks the protocol closes the
// channel with ErrQMP, and every command after fails at once.
func TestQMPHostilePeer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(id string) string
	}{
		{"wrong id", func(string) string { return `{"return": {}, "id": "husk-999"}` }},
		{"not JSON", func(string) string { return `{"return": ` }},
		{"too long", func(string) string { return `{"return": "` + strings.Repeat("a", maxMessage) + `"}` }},
		{"two kinds", func(id string) string { return `{"return": {}, "event": "X", "id": "` + id + `"}` }},
		{"second greeting", func(string) string { return greeting }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, us := newFakeQEMU(t)
			broken := make(chan error, 1)
			c := dial(t, f, us, 5*time.Second, nil, func(err error) { broken <- err })
			go func() {
				_, id, _ := f.command()
				f.send(tc.reply(id))
			}()
			_, err := c.execute(context.Background(), "query-status", nil, nil)
			if !errors.Is(err, ErrQMP) {
				t.Errorf("execute: %v, want ErrQMP", err)
			}
			if _, err := c.execute(context.Background(), "query-status", nil, nil); !errors.Is(err, ErrQMP) {
				t.Errorf("after: %v, want ErrQMP", err)
			}
			if err := <-broken; !errors.Is(err, ErrQMP) {
				t.Errorf("onBroken got %v, want ErrQMP", err)
			}
		})
	}
}

// TestQMPNoReply: a command QEMU never answers breaks the channel after
// the reply timeout, whether or not its caller still waits.
func TestQMPNoReply(t *testing.T) {
	f, us := newFakeQEMU(t)
	c := dial(t, f, us, 200*time.Millisecond, nil)
	go f.command()
	if _, err := c.execute(context.Background(), "quit", nil, nil); !errors.Is(err, ErrQMP) {
		t.Errorf("unanswered: %v, want ErrQMP", err)
	}

	f, us = newFakeQEMU(t)
	c = dial(t, f, us, 200*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		f.command()
		cancel() // the caller gives up once the command is sent
	}()
	if _, err := c.execute(ctx, "quit", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	<-c.closed
	if !errors.Is(c.closeErr(), ErrQMP) {
		t.Errorf("after the timeout: %v, want ErrQMP", c.closeErr())
	}
}

// TestQMPLateReply: a caller that gave up does not lose the channel when
// the reply comes late; the next command waits for it and gets its own.
func TestQMPLateReply(t *testing.T) {
	f, us := newFakeQEMU(t)
	c := dial(t, f, us, 5*time.Second, nil)
	first := make(chan string, 1)
	go func() {
		_, id, _ := f.command()
		first <- id
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.execute(ctx, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow: %v", err)
	}
	id := <-first
	go func() {
		f.send(`{"return": {"late": true}, "id": "` + id + `"}`)
		_, id2, _ := f.command()
		f.send(`{"return": {"own": true}, "id": "` + id2 + `"}`)
	}()
	ret, err := c.execute(context.Background(), "next", nil, nil)
	if err != nil || string(ret) != `{"own": true}` {
		t.Errorf("next: %s, %v", ret, err)
	}
}

func TestQMPEvents(t *testing.T) {
	f, us := newFakeQEMU(t)
	var mu sync.Mutex
	var got []string
	c := dial(t, f, us, 5*time.Second, func(e qmpEvent) {
		mu.Lock()
		got = append(got, e.Name+string(e.Data))
		mu.Unlock()
	})
	go func() {
		_, id, _ := f.command()
		f.send(`{"event": "DEVICE_DELETED", "data": {"device": "blk0"}, "timestamp": {"seconds": 1, "microseconds": 2}}`)
		f.send(`{"return": {}, "id": "` + id + `"}`)
	}()
	if _, err := c.execute(context.Background(), "device_del", nil, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != `DEVICE_DELETED{"device": "blk0"}` {
		t.Errorf("events %q", got)
	}
}

// TestQMPPassesDescriptors: add-fd's descriptor goes with the command.
func TestQMPPassesDescriptors(t *testing.T) {
	f, us := newFakeQEMU(t)
	c := dial(t, f, us, 5*time.Second, nil)
	file, err := os.CreateTemp(t.TempDir(), "disk")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	got := make(chan error, 1)
	go func() {
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := f.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			got <- errors.New("no control message")
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			got <- errors.New("no descriptor")
			return
		}
		var a, b unix.Stat_t
		unix.Fstat(fds[0], &a)
		unix.Fstat(int(file.Fd()), &b)
		unix.Close(fds[0])
		if a.Ino != b.Ino {
			got <- errors.New("another file")
			return
		}
		var m struct{ ID string }
		json.Unmarshal(buf[:n], &m)
		f.send(`{"return": {"fdset-id": 1, "fd": 9}, "id": "` + m.ID + `"}`)
		got <- nil
	}()
	if _, err := c.execute(context.Background(), "add-fd", map[string]any{"fdset-id": 1}, []int{int(file.Fd())}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Error(err)
	}
}

// TestQMPGreetingBounded: a peer that never greets fails dialQMP at its
// context's deadline; one that closes fails it at once.
func TestQMPGreetingBounded(t *testing.T) {
	_, us := newFakeQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := dialQMP(ctx, us, time.Second, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent peer: %v", err)
	}
	f, us := newFakeQEMU(t)
	f.conn.Close()
	if _, err := dialQMP(context.Background(), us, time.Second, nil, nil); !errors.Is(err, errQMPClosed) {
		t.Errorf("closed peer: %v", err)
	}
}
