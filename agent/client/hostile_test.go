package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/agent/api"
)

// hangBound is how long a test waits for a call that must end at a short
// deadline: not a timing assertion, a guard against hanging until the
// test binary's timeout.
const hangBound = 10 * time.Second

// TestReplyThatNeverComes checks that a call the agent never answers fails
// at its deadline with an error naming the call and the deadline, that
// the connection still serves other calls, and that a new Client on a new
// connection works.
func TestReplyThatNeverComes(t *testing.T) {
	checkGoroutines(t)
	f := newFakeAgent()
	f.block = map[string]bool{"StartContainer": true, "WaitProcess": true}
	c := serve(t, f, Options{CallTimeout: 100 * time.Millisecond})
	ctx := context.Background()

	start := time.Now()
	_, err := c.StartContainer(ctx, "c1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StartContainer = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "StartContainer") || !strings.Contains(msg, "100ms") {
		t.Errorf("error %q does not name the call and its deadline", msg)
	}
	if d := time.Since(start); d > hangBound {
		t.Fatalf("StartContainer returned after %v", d)
	}
	_, err = c.WaitProcess(ctx, "c1", "", 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "150ms") {
		t.Fatalf("WaitProcess = %v, want its 150ms deadline exceeded", err)
	}

	// A silent call is the agent's fault, not the connection's.
	if err := c.Broken(); err != nil {
		t.Errorf("Broken = %v", err)
	}
	if _, err := c.Check(ctx); err != nil {
		t.Errorf("Check on the same connection: %v", err)
	}
	if _, err := serve(t, newFakeAgent(), Options{}).Check(ctx); err != nil {
		t.Errorf("Check on a fresh client: %v", err)
	}
}

// TestReplyOverTTRPCsLimit has a real ttrpc agent answer with a 5 MiB
// value: ttrpc will not send a frame over 4 MiB and hangs up instead. The
// call fails and the Client says the connection is broken.
func TestReplyOverTTRPCsLimit(t *testing.T) {
	checkGoroutines(t)
	f := newFakeAgent()
	f.stats = &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL, Value: make([]byte, 5<<20)}
	c := serve(t, f, Options{})
	_, err := c.StatsContainer(context.Background(), "c1")
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("StatsContainer = %v, want ErrBroken", err)
	}
	if c.Broken() == nil {
		t.Error("Broken = nil after the agent hung up")
	}
	if _, err := c.Check(context.Background()); !errors.Is(err, ErrBroken) {
		t.Errorf("Check on a broken connection = %v, want ErrBroken at once", err)
	}
}

// TestRepliesWithinTTRPCsLimitAreValidated has a real ttrpc agent answer
// with a 3 MiB stats value: a legal frame, a reply over the 1 MiB the host
// accepts. The call fails with ErrBadReply; the connection is fine.
func TestRepliesWithinTTRPCsLimitAreValidated(t *testing.T) {
	f := newFakeAgent()
	f.stats = &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL, Value: make([]byte, 3<<20)}
	c := serve(t, f, Options{})
	if _, err := c.StatsContainer(context.Background(), "c1"); !errors.Is(err, ErrBadReply) {
		t.Fatalf("StatsContainer = %v, want ErrBadReply", err)
	}
	if err := c.Broken(); err != nil {
		t.Errorf("Broken = %v", err)
	}
}

// TestBadRepliesFromARealAgent checks, through ttrpc, that replies out of
// range fail with ErrBadReply naming the call, and leave the connection
// usable.
func TestBadRepliesFromARealAgent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		agent func(*fakeAgent)
		call  func(*Client) error
	}{
		{"pid 0", func(f *fakeAgent) { f.pid = 0 },
			func(c *Client) error { _, err := c.StartContainer(context.Background(), "c1"); return err }},
		{"exit status 256", func(f *fakeAgent) { f.wait.ExitStatus = 256 },
			func(c *Client) error { _, err := c.WaitProcess(context.Background(), "c1", "", 0); return err }},
		{"stats of an unknown type", func(f *fakeAgent) { f.stats.TypeUrl = "google.protobuf.Empty" },
			func(c *Client) error { _, err := c.StatsContainer(context.Background(), "c1"); return err }},
		{"pid 0 in a list", func(f *fakeAgent) { f.pids = []uint32{1, 0} },
			func(c *Client) error { _, err := c.ListPids(context.Background(), "c1"); return err }},
		{"an OOM id with a slash", func(f *fakeAgent) { f.ooms = []string{"../c1"} },
			func(c *Client) error { _, err := c.WaitOOM(context.Background(), 0); return err }},
		{"a relative volume path", func(f *fakeAgent) { f.volPath = "run/v1" },
			func(c *Client) error { _, err := c.SyncVolume(context.Background(), "v1", nil, false); return err }},
		{"a volume path with ..", func(f *fakeAgent) { f.volPath = "/run/../etc" },
			func(c *Client) error { _, err := c.SyncVolume(context.Background(), "v1", nil, false); return err }},
		{"a volume path with a newline", func(f *fakeAgent) { f.volPath = "/run/v\n1" },
			func(c *Client) error { _, err := c.SyncVolume(context.Background(), "v1", nil, false); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent()
			tc.agent(f)
			c := serve(t, f, Options{})
			err := tc.call(c)
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("got %v, want ErrBadReply", err)
			}
			if !strings.HasPrefix(err.Error(), "agent ") {
				t.Errorf("error %q does not name the call", err)
			}
			if err := c.Broken(); err != nil {
				t.Errorf("Broken = %v", err)
			}
		})
	}
}

// TestFramesNoTTRPCPeerSends answers with bytes no ttrpc server writes:
// each call fails with ErrBadReply and ErrBroken, promptly (ttrpc alone
// would wait to skip gigabytes for some of them), and Broken says why.
func TestFramesNoTTRPCPeerSends(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(stream uint32) []byte
		say   string // in the error
	}{
		{"HTTP instead of a frame", func(uint32) []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\n") }, "over ttrpc's limit"},
		{"a frame over 4 MiB", func(s uint32) []byte { return frame(MaxFrame+1, s, frameResponse, 0, nil) }, "over ttrpc's limit"},
		{"a request frame", func(s uint32) []byte { return frame(0, s, 1, 0, nil) }, "type 1"},
		{"a data frame", func(s uint32) []byte { return frame(0, s, 3, 0, nil) }, "type 3"},
		{"an even stream", func(s uint32) []byte { return frame(0, s+1, frameResponse, 0, nil) }, "stream"},
		{"an envelope that is no Response", func(s uint32) []byte {
			return frame(4, s, frameResponse, 0, []byte{0xff, 0xff, 0xff, 0xff})
		}, "no ttrpc response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			host, guest := socketPair(t)
			rawAgent(t, guest, tc.reply)
			c := New(host, Options{CallTimeout: hangBound})
			t.Cleanup(func() { c.Close() })

			_, err := c.Check(context.Background())
			if !errors.Is(err, ErrBroken) || !errors.Is(err, ErrBadReply) {
				t.Fatalf("Check = %v, want ErrBroken and ErrBadReply", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Check waited for its deadline: %v", err)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error %q does not say %q", err, tc.say)
			}
			if b := c.Broken(); !errors.Is(b, ErrBroken) {
				t.Errorf("Broken = %v", b)
			}
		})
	}
}

// TestFrameOfExactlyTTRPCsLimit checks the boundary: a 4 MiB frame is
// legal (ttrpc accepts it), and its 4 MiB stats value is then refused by
// the reply's own bound, leaving the connection usable.
func TestFrameOfExactlyTTRPCsLimit(t *testing.T) {
	checkGoroutines(t)
	host, guest := socketPair(t)
	// A stats value that makes the frame's payload exactly MaxFrame: the
	// value's length prefix and the envelope's cost the same few bytes for
	// every length near it.
	envelope := func(n int) []byte {
		return envelopeFrame(t, 1, mustMarshal(t, &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL, Value: make([]byte, n)}))[frameHeaderSize:]
	}
	n := MaxFrame - 64
	n += MaxFrame - len(envelope(n))
	env := envelope(n)
	if len(env) != MaxFrame {
		t.Fatalf("made a frame of %d bytes", len(env))
	}
	rawAgent(t, guest, func(s uint32) []byte {
		return frame(uint32(len(env)), s, frameResponse, 0, env)
	})
	c := New(host, Options{CallTimeout: hangBound})
	t.Cleanup(func() { c.Close() })
	_, err := c.StatsContainer(context.Background(), "c1")
	if !errors.Is(err, ErrBadReply) || errors.Is(err, ErrBroken) {
		t.Fatalf("StatsContainer = %v, want ErrBadReply alone", err)
	}
	if err := c.Broken(); err != nil {
		t.Errorf("Broken = %v", err)
	}
}

// TestPayloadThatIsNotTheReplyType has a well-framed reply whose payload
// does not decode as the call's response: a bad reply, but the stream of
// frames is intact, so the connection stays.
func TestPayloadThatIsNotTheReplyType(t *testing.T) {
	host, guest := socketPair(t)
	rawAgent(t, guest, func(s uint32) []byte {
		// A varint that never ends.
		return envelopeFrame(t, s, []byte{0x08, 0xff, 0xff, 0xff})
	})
	c := New(host, Options{CallTimeout: hangBound})
	t.Cleanup(func() { c.Close() })
	_, err := c.Check(context.Background())
	if !errors.Is(err, ErrBadReply) || errors.Is(err, ErrBroken) {
		t.Fatalf("Check = %v, want ErrBadReply alone", err)
	}
}

// TestAgentThatStopsReading checks that a call whose request cannot be
// written (the agent reads nothing) still ends at its deadline, that the
// blocked write then breaks the connection, and that Close leaves no
// goroutine behind.
func TestAgentThatStopsReading(t *testing.T) {
	checkGoroutines(t)
	host, guest := net.Pipe() // unbuffered: the first write blocks
	t.Cleanup(func() { guest.Close() })
	c := New(host, Options{CallTimeout: 100 * time.Millisecond})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	_, err := c.CreateContainer(context.Background(), CreateContainerRequest{ContainerID: "c1", Spec: bytes.Repeat([]byte{' '}, 1<<20)})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "CreateContainer") {
		t.Fatalf("CreateContainer = %v, want its deadline exceeded", err)
	}
	deadline := time.Now().Add(hangBound)
	for c.Broken() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Broken(); !errors.Is(err, ErrBroken) {
		t.Fatalf("Broken = %v after a write blocked past its bound", err)
	}
	if _, err := c.Check(context.Background()); !errors.Is(err, ErrBroken) {
		t.Errorf("Check = %v, want ErrBroken at once", err)
	}
}

// TestAgentThatHangsUp checks that the end of the connection fails the
// call in flight and marks the Client broken.
func TestAgentThatHangsUp(t *testing.T) {
	checkGoroutines(t)
	host, guest := socketPair(t)
	rawAgent(t, guest, func(uint32) []byte {
		guest.Close()
		return nil
	})
	c := New(host, Options{CallTimeout: hangBound})
	t.Cleanup(func() { c.Close() })
	if _, err := c.Check(context.Background()); !errors.Is(err, ErrBroken) || errors.Is(err, ErrBadReply) {
		t.Fatalf("Check = %v, want ErrBroken (and no bad reply)", err)
	}
	if b := c.Broken(); !errors.Is(b, ErrBroken) {
		t.Errorf("Broken = %v", b)
	}
}

// TestCloseEndsCallsInFlight checks that Close fails the calls waiting for
// a reply and returns with no goroutine left.
func TestCloseEndsCallsInFlight(t *testing.T) {
	checkGoroutines(t)
	f := newFakeAgent()
	f.block = map[string]bool{"WaitOOM": true}
	c := serve(t, f, Options{})
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			_, err := c.WaitOOM(context.Background(), time.Hour)
			errs <- err
		}()
	}
	// Wait until the agent holds them all.
	deadline := time.Now().Add(hangBound)
	for {
		f.mu.Lock()
		n := len(f.requests)
		f.mu.Unlock()
		if n == cap(errs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range cap(errs) {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("WaitOOM in flight at Close = %v, want ErrClosed", err)
		}
	}
}
