package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/agent/api"
)

// fakeAgent implements the Agent service for tests: every method records
// its request and answers from the fields below.
type fakeAgent struct {
	check     *api.CheckResponse
	pid       uint32
	wait      *api.WaitProcessResponse
	stats     *api.StatsContainerResponse
	pids      []uint32
	ooms      []string
	guestTime int64
	volPath   string
	// err, when set, is every method's answer.
	err error
	// block names methods that wait for unblock, whatever their context
	// says: an agent whose reply never comes.
	block   map[string]bool
	unblock chan struct{}

	mu        sync.Mutex
	requests  []proto.Message          // guarded by mu
	deadlines map[string]time.Duration // time left to each call's deadline, as the agent saw it; guarded by mu
}

// newFakeAgent answers every call with a valid reply.
func newFakeAgent() *fakeAgent {
	return &fakeAgent{
		check:     &api.CheckResponse{ProtocolVersion: api.ProtocolVersion, AgentVersion: "v0.1.0", KernelRelease: "6.1.0-28-cloud-amd64", BootTimeUnixNano: 1_700_000_000_000_000_000},
		pid:       42,
		wait:      &api.WaitProcessResponse{Exited: true, ExitStatus: 137, ExitedAtUnixNano: 1_700_000_001_000_000_000, Pid: 42},
		stats:     validStats(),
		pids:      []uint32{1, 42, 4194304},
		ooms:      []string{"c1", "pod-2.web_0"},
		guestTime: 1_700_000_002_000_000_000,
		volPath:   "/run/husk/volumes/v1",
		unblock:   make(chan struct{}),
		deadlines: make(map[string]time.Duration),
	}
}

func (f *fakeAgent) enter(ctx context.Context, method string, req proto.Message) error {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	if dl, ok := ctx.Deadline(); ok {
		f.deadlines[method] = time.Until(dl)
	}
	block := f.block[method]
	f.mu.Unlock()
	if block {
		<-f.unblock
	}
	return f.err
}

// last returns the last request the agent received.
func (f *fakeAgent) last() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeAgent) Check(ctx context.Context, r *api.CheckRequest) (*api.CheckResponse, error) {
	if err := f.enter(ctx, "Check", r); err != nil {
		return nil, err
	}
	return f.check, nil
}

func (f *fakeAgent) CreateSandbox(ctx context.Context, r *api.CreateSandboxRequest) (*api.CreateSandboxResponse, error) {
	return &api.CreateSandboxResponse{}, f.enter(ctx, "CreateSandbox", r)
}

func (f *fakeAgent) DestroySandbox(ctx context.Context, r *api.DestroySandboxRequest) (*api.DestroySandboxResponse, error) {
	return &api.DestroySandboxResponse{}, f.enter(ctx, "DestroySandbox", r)
}

func (f *fakeAgent) CreateContainer(ctx context.Context, r *api.CreateContainerRequest) (*api.CreateContainerResponse, error) {
	return &api.CreateContainerResponse{Pid: f.pid}, f.enter(ctx, "CreateContainer", r)
}

func (f *fakeAgent) StartContainer(ctx context.Context, r *api.StartContainerRequest) (*api.StartContainerResponse, error) {
	return &api.StartContainerResponse{Pid: f.pid}, f.enter(ctx, "StartContainer", r)
}

func (f *fakeAgent) ExecProcess(ctx context.Context, r *api.ExecProcessRequest) (*api.ExecProcessResponse, error) {
	return &api.ExecProcessResponse{}, f.enter(ctx, "ExecProcess", r)
}

func (f *fakeAgent) StartProcess(ctx context.Context, r *api.StartProcessRequest) (*api.StartProcessResponse, error) {
	return &api.StartProcessResponse{Pid: f.pid}, f.enter(ctx, "StartProcess", r)
}

func (f *fakeAgent) SignalProcess(ctx context.Context, r *api.SignalProcessRequest) (*api.SignalProcessResponse, error) {
	return &api.SignalProcessResponse{}, f.enter(ctx, "SignalProcess", r)
}

func (f *fakeAgent) WaitProcess(ctx context.Context, r *api.WaitProcessRequest) (*api.WaitProcessResponse, error) {
	return f.wait, f.enter(ctx, "WaitProcess", r)
}

func (f *fakeAgent) CloseStdin(ctx context.Context, r *api.CloseStdinRequest) (*api.CloseStdinResponse, error) {
	return &api.CloseStdinResponse{}, f.enter(ctx, "CloseStdin", r)
}

func (f *fakeAgent) ResizePty(ctx context.Context, r *api.ResizePtyRequest) (*api.ResizePtyResponse, error) {
	return &api.ResizePtyResponse{}, f.enter(ctx, "ResizePty", r)
}

func (f *fakeAgent) DeleteProcess(ctx context.Context, r *api.DeleteProcessRequest) (*api.DeleteProcessResponse, error) {
	return &api.DeleteProcessResponse{}, f.enter(ctx, "DeleteProcess", r)
}

func (f *fakeAgent) DeleteContainer(ctx context.Context, r *api.DeleteContainerRequest) (*api.DeleteContainerResponse, error) {
	return &api.DeleteContainerResponse{}, f.enter(ctx, "DeleteContainer", r)
}

func (f *fakeAgent) PauseContainer(ctx context.Context, r *api.PauseContainerRequest) (*api.PauseContainerResponse, error) {
	return &api.PauseContainerResponse{}, f.enter(ctx, "PauseContainer", r)
}

func (f *fakeAgent) ResumeContainer(ctx context.Context, r *api.ResumeContainerRequest) (*api.ResumeContainerResponse, error) {
	return &api.ResumeContainerResponse{}, f.enter(ctx, "ResumeContainer", r)
}

func (f *fakeAgent) UpdateContainer(ctx context.Context, r *api.UpdateContainerRequest) (*api.UpdateContainerResponse, error) {
	return &api.UpdateContainerResponse{}, f.enter(ctx, "UpdateContainer", r)
}

func (f *fakeAgent) StatsContainer(ctx context.Context, r *api.StatsContainerRequest) (*api.StatsContainerResponse, error) {
	return f.stats, f.enter(ctx, "StatsContainer", r)
}

func (f *fakeAgent) ListPids(ctx context.Context, r *api.ListPidsRequest) (*api.ListPidsResponse, error) {
	return &api.ListPidsResponse{Pids: f.pids}, f.enter(ctx, "ListPids", r)
}

func (f *fakeAgent) WaitOOM(ctx context.Context, r *api.WaitOOMRequest) (*api.WaitOOMResponse, error) {
	return &api.WaitOOMResponse{ContainerIds: f.ooms}, f.enter(ctx, "WaitOOM", r)
}

func (f *fakeAgent) GuestTime(ctx context.Context, r *api.GuestTimeRequest) (*api.GuestTimeResponse, error) {
	return &api.GuestTimeResponse{UnixNano: f.guestTime}, f.enter(ctx, "GuestTime", r)
}

func (f *fakeAgent) SyncVolume(ctx context.Context, r *api.SyncVolumeRequest) (*api.SyncVolumeResponse, error) {
	return &api.SyncVolumeResponse{Path: f.volPath}, f.enter(ctx, "SyncVolume", r)
}

// socketPair returns the two ends of a connected Unix stream socket pair:
// kernel buffers and deadlines, like the vsock connections husk dials.
func socketPair(t *testing.T) (host, guest net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("socketpair-%d", i))
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// oneConnListener hands one connection to a ttrpc server.
type oneConnListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	l.conns <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.UnixAddr{Name: "agent", Net: "unix"} }

// serve serves svc with a real ttrpc server on the guest end of a new
// connection and returns a Client on the host end. Cleanup closes both and
// releases the agent's blocked calls.
func serve(t *testing.T, svc *fakeAgent, opts Options) *Client {
	t.Helper()
	host, guest := socketPair(t)
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	api.RegisterAgentService(srv, svc)
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(context.Background(), newOneConnListener(guest))
	}()
	c := New(host, opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		closeOnce(svc.unblock)
		srv.Close()
		guest.Close()
		<-served
	})
	return c
}

var closeMu sync.Mutex

func closeOnce(ch chan struct{}) {
	closeMu.Lock()
	defer closeMu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// rawAgent answers the host's requests with bytes of the test's making,
// not through ttrpc: reply gets each request's stream id and returns what
// to write back.
func rawAgent(t *testing.T, guest net.Conn, reply func(stream uint32) []byte) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var hdr [frameHeaderSize]byte
		for {
			if _, err := io.ReadFull(guest, hdr[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, guest, int64(binary.BigEndian.Uint32(hdr[:4]))); err != nil {
				return
			}
			if _, err := guest.Write(reply(binary.BigEndian.Uint32(hdr[4:8]))); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		guest.Close()
		<-done
	})
}

// frame makes a ttrpc frame.
func frame(length, stream uint32, typ, flags byte, payload []byte) []byte {
	b := make([]byte, frameHeaderSize, frameHeaderSize+len(payload))
	binary.BigEndian.PutUint32(b[0:4], length)
	binary.BigEndian.PutUint32(b[4:8], stream)
	b[8], b[9] = typ, flags
	return append(b, payload...)
}

func mustMarshal(t testing.TB, msg proto.Message) []byte {
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelopeFrame makes a response frame around payload.
func envelopeFrame(t testing.TB, stream uint32, payload []byte) []byte {
	env, err := proto.Marshal(&ttrpc.Response{Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return frame(uint32(len(env)), stream, frameResponse, 0, env)
}

// checkGoroutines fails the test if, once its other cleanups have run,
// more goroutines are left than it started with. Register it first (it
// then runs last), and do not use it in parallel tests.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		var n int
		for range 200 {
			if n = runtime.NumGoroutine(); n <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines left behind (%d before the test):\n%s", n-before, before, strings.TrimSpace(string(buf)))
	})
}
