package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Bounds on QMP: QEMU runs the guest and is not trusted to be brief or
// well-formed.
const (
	// maxMessage bounds one QMP message (a line of JSON). husk's commands
	// get short replies; the largest, query-blockstats with 16 disks, is a
	// few KiB.
	maxMessage = 64 << 10
	// maxText bounds the text of a QMP error or a reason kept from it.
	maxText = 256
)

// ErrQMP is wrapped by the errors of a QMP peer that broke the protocol:
// a message too long, not JSON, a reply nobody asked for. The channel is
// closed after it.
var ErrQMP = errors.New("QMP protocol error")

// errQMPClosed is what commands get once the channel is closed.
var errQMPClosed = errors.New("QMP channel closed")

// qmpMessage is any message QEMU sends: a greeting, a reply (return or
// error, with the id of the command) or an event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *qmpError       `json:"error"`
	ID     string          `json:"id"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
}

// qmpError is a command's error reply.
type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return "QMP " + cleanText(e.Class) + ": " + cleanText(e.Desc) }

// Unwrap classifies the error for errors.Is.
func (e *qmpError) Unwrap() error {
	if e.Class == "DeviceNotFound" {
		return errdefs.ErrNotFound
	}
	return nil
}

// qmpEvent is an asynchronous event.
type qmpEvent struct {
	Name string
	Data json.RawMessage
}

// qmpClient speaks QMP over a Unix socket to one QEMU: one command at a
// time, each bounded by its context and by replyTimeout, events handed to
// onEvent (called from the reading goroutine: it must not block). A peer
// that breaks the protocol closes the channel and is reported to
// onBroken, once (the VM kills such a QEMU).
type qmpClient struct {
	conn         *net.UnixConn
	replyTimeout time.Duration
	onEvent      func(qmpEvent)
	onBroken     func(error)

	sem  chan struct{} // holds one token: the right to send a command
	next uint64        // the next command's id; guarded by sem

	mu      sync.Mutex
	pending string           // guarded by mu; the id of the command in flight, "" for none
	reply   chan *qmpMessage // guarded by mu; where its reply goes (buffered 1)
	err     error            // guarded by mu; why the channel closed
	closed  chan struct{}    // closed with the channel
	greeted chan json.RawMessage
}

// dialQMP takes over conn, reads QEMU's greeting and negotiates
// capabilities (none), bounded by ctx.
func dialQMP(ctx context.Context, conn *net.UnixConn, replyTimeout time.Duration, onEvent func(qmpEvent), onBroken func(error)) (*qmpClient, error) {
	c := &qmpClient{
		conn: conn, replyTimeout: replyTimeout, onEvent: onEvent, onBroken: onBroken,
		sem:     make(chan struct{}, 1),
		closed:  make(chan struct{}),
		greeted: make(chan json.RawMessage, 1),
	}
	c.sem <- struct{}{}
	go c.read()
	select {
	case g := <-c.greeted:
		var v struct {
			Version struct {
				QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
			} `json:"version"`
		}
		if err := json.Unmarshal(g, &v); err != nil {
			c.fail(fmt.Errorf("%w: greeting: %v", ErrQMP, err))
			return nil, c.closeErr()
		}
	case <-c.closed:
		return nil, fmt.Errorf("QMP greeting: %w", c.closeErr())
	case <-ctx.Done():
		c.close()
		return nil, fmt.Errorf("QMP greeting: %w", ctx.Err())
	}
	if _, err := c.execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// read reads messages until the channel closes or breaks.
func (c *qmpClient) read() {
	r := bufio.NewReaderSize(c.conn, maxMessage)
	greeted := false
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			c.fail(fmt.Errorf("%w: a message over %d bytes", ErrQMP, maxMessage))
			return
		}
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", errQMPClosed, err))
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var m qmpMessage
		if err := json.Unmarshal(line, &m); err != nil {
			c.fail(fmt.Errorf("%w: %v", ErrQMP, err))
			return
		}
		kinds := 0
		for _, set := range []bool{m.QMP != nil, m.Return != nil, m.Error != nil, m.Event != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			c.fail(fmt.Errorf("%w: a message that is not one of greeting, reply or event", ErrQMP))
			return
		}
		switch {
		case m.QMP != nil:
			if greeted {
				c.fail(fmt.Errorf("%w: a second greeting", ErrQMP))
				return
			}
			greeted = true
			c.greeted <- m.QMP
		case m.Event != "":
			if c.onEvent != nil {
				c.onEvent(qmpEvent{Name: m.Event, Data: m.Data})
			}
		default:
			if !greeted || !c.deliver(&m) {
				c.fail(fmt.Errorf("%w: a reply to no command in flight (id %q)", ErrQMP, cleanText(m.ID)))
				return
			}
		}
	}
}

// deliver hands a reply to the command in flight, if its id matches.
func (c *qmpClient) deliver(m *qmpMessage) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == "" || m.ID != c.pending {
		return false
	}
	c.reply <- m
	c.pending, c.reply = "", nil
	return true
}

// fail closes the channel for err (the first reason is kept).
func (c *qmpClient) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.conn.Close()
	close(c.closed)
	if c.onBroken != nil && errors.Is(err, ErrQMP) {
		go c.onBroken(err)
	}
}

func (c *qmpClient) close() { c.fail(errQMPClosed) }

func (c *qmpClient) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// execute runs command with args (nil for none), passing fds with it
// (SCM_RIGHTS, for add-fd), and returns its return value. It waits for
// its turn and for the reply as long as ctx allows; a reply that has not
// come within replyTimeout of sending breaks the channel, whether or not
// the caller still waits.
func (c *qmpClient) execute(ctx context.Context, command string, args any, fds []int) (json.RawMessage, error) {
	select {
	case <-c.sem:
	case <-c.closed:
		return nil, fmt.Errorf("QMP %s: %w", command, c.closeErr())
	case <-ctx.Done():
		return nil, fmt.Errorf("QMP %s: waiting for the command before it: %w", command, ctx.Err())
	}
	c.next++
	id := "husk-" + strconv.FormatUint(c.next, 10)
	msg := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	b, err := json.Marshal(msg)
	if err != nil {
		c.sem <- struct{}{}
		return nil, err
	}
	reply := make(chan *qmpMessage, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.sem <- struct{}{}
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	c.pending, c.reply = id, reply
	c.mu.Unlock()

	sendBy := time.Now().Add(c.replyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(sendBy) {
		sendBy = d
	}
	_ = c.conn.SetWriteDeadline(sendBy)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.conn.WriteMsgUnix(append(b, '\n'), oob, nil); err != nil {
		c.fail(fmt.Errorf("%w: sending %s: %v", errQMPClosed, command, err))
		c.sem <- struct{}{}
		return nil, fmt.Errorf("QMP %s: %w", command, c.closeErr())
	}
	timer := time.NewTimer(c.replyTimeout)
	select {
	case m := <-reply:
		timer.Stop()
		c.sem <- struct{}{}
		if m.Error != nil {
			return nil, fmt.Errorf("QMP %s: %w", command, m.Error)
		}
		return m.Return, nil
	case <-c.closed:
		timer.Stop()
		c.sem <- struct{}{}
		return nil, fmt.Errorf("QMP %s: %w", command, c.closeErr())
	case <-timer.C:
		c.fail(fmt.Errorf("%w: no reply to %s within %v", ErrQMP, command, c.replyTimeout))
		c.sem <- struct{}{}
		return nil, fmt.Errorf("QMP %s: %w", command, c.closeErr())
	case <-ctx.Done():
		// The reply may still come: the next command waits for it (or
		// for the channel to break at replyTimeout) before it is sent.
		go func() {
			defer timer.Stop()
			select {
			case <-reply:
			case <-c.closed:
			case <-timer.C:
				c.fail(fmt.Errorf("%w: no reply to %s within %v", ErrQMP, command, c.replyTimeout))
			}
			c.sem <- struct{}{}
		}()
		return nil, fmt.Errorf("QMP %s: %w", command, ctx.Err())
	}
}

// cleanText cuts s to maxText bytes and replaces what is not printable
// with '?': QEMU's text reaches logs and errors.
func cleanText(s string) string {
	if len(s) > maxText {
		s = s[:maxText] + "…"
	}
	b := []rune{}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			r = '?'
		}
		b = append(b, r)
	}
	return string(b)
}
