package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent"
	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/agent/serial"
	"github.com/huskrt/husk/test/devenv"
)

// serialBench is a bench whose agent serves, beside its Unix sockets (as
// vsock), a serial session on a "port": a Unix socket whose every
// connection stands in for a host connecting to the virtio-serial port,
// as QEMU's chardev does.
type serialBench struct {
	*bench
	port    string // the port's socket
	session *serial.Session
}

func newSerialBench(t *testing.T) *serialBench {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the agent runs containers: needs root")
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := devenv.BusyboxRootfs(rootfs); err != nil {
		t.Skipf("no busybox root filesystem: %v", err)
	}
	state := filepath.Join(dir, "state")
	svc, err := agent.New(agent.Options{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	agentL, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	streamL, err := net.Listen("unix", filepath.Join(dir, "stream.sock"))
	if err != nil {
		t.Fatal(err)
	}
	portL, err := net.Listen("unix", filepath.Join(dir, "port.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := serial.NewServer(api.AgentPort, api.StreamPort)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 2)
	go func() {
		served <- srv.Serve(ctx, func(ctx context.Context) (io.ReadWriteCloser, error) {
			stop := context.AfterFunc(ctx, func() { portL.Close() })
			defer stop()
			return portL.Accept()
		})
	}()
	go func() {
		served <- svc.ServeAll(ctx, agent.Listeners{
			Agent:   []net.Listener{agentL, srv.Listener(api.AgentPort)},
			Streams: []net.Listener{streamL, srv.Listener(api.StreamPort)},
		})
	}()
	b := &serialBench{
		bench: &bench{t: t, ctx: ctx, streams: streamL.Addr().String(), rootfs: rootfs, state: state},
		port:  portL.Addr().String(),
	}
	b.connect()
	t.Cleanup(func() {
		b.cl.Close()
		b.session.Close()
		cancel()
		for range 2 {
			if err := <-served; err != nil && err != context.Canceled {
				t.Errorf("serving: %v", err)
			}
		}
	})
	return b
}

// connect connects to the port as a host (a shim) does: a new session,
// whose streams the bench's dial opens, and an agent client on it.
func (b *serialBench) connect() {
	b.t.Helper()
	conn, err := net.Dial("unix", b.port)
	if err != nil {
		b.t.Fatal(err)
	}
	s, err := serial.New(conn)
	if err != nil {
		b.t.Fatal(err)
	}
	dial := func(port uint32) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.Dial(ctx, port)
	}
	c, err := dial(api.AgentPort)
	if err != nil {
		b.t.Fatal(err)
	}
	b.session, b.dial, b.cl = s, dial, client.New(c, client.Options{})
}

// TestContainerRunsOverASerialSession: the agent serves its API and a
// container's stdio over one serial session as it does over vsock.
func TestContainerRunsOverASerialSession(t *testing.T) {
	runWithStreams(t, newSerialBench(t).bench)
}

// TestAShimThatReconnectsFindsTheAgent: a host that goes away and comes
// back (a shim restarted) gets a fresh session on the same port, with the
// agent's state as it was; a stream attached over vsock is taken by a
// call over the serial session, as both feed one acceptor.
func TestAShimThatReconnectsFindsTheAgent(t *testing.T) {
	b := newSerialBench(t)
	if err := b.cl.CreateSandbox(b.ctx, "pod", "pod-host"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{ContainerID: "long", Spec: b.spec(false, "sleep", "1000")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cl.DeleteContainer(context.Background(), "long") })
	if _, err := b.cl.StartContainer(b.ctx, "long"); err != nil {
		t.Fatal(err)
	}
	first := b.session
	b.cl.Close()
	first.Close()
	b.connect()
	if _, err := b.cl.Check(b.ctx); err != nil {
		t.Fatalf("check over the second session: %v", err)
	}
	pids, err := b.cl.ListPids(b.ctx, "long")
	if err != nil || len(pids) != 1 {
		t.Fatalf("pids of the container started over the first session: %v, %v", pids, err)
	}
	// A stream attached over the Unix socket (vsock's stand-in), named
	// over the serial session.
	conn, err := net.Dial("unix", b.streams)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id := api.NewStreamID()
	if err := api.WriteStreamHeader(conn, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{
		ContainerID: "mixed", Spec: withCgroup(t, b.spec(false, "echo", "over both"), "/husk-agent-test/mixed"), Stdio: client.Stdio{Stdout: id},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cl.DeleteContainer(context.Background(), "mixed") })
	if _, err := b.cl.StartContainer(b.ctx, "mixed"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, conn); got != "over both\n" {
		t.Errorf("stdout %q", got)
	}
	if err := b.cl.SignalProcess(b.ctx, "long", "", 9, false); err != nil {
		t.Fatal(err)
	}
	if r := b.wait("long", ""); r.ExitStatus != 137 {
		t.Errorf("exit %+v, want 137", r)
	}
}

// withCgroup is spec with its cgroup path set to path.
func withCgroup(t *testing.T, spec []byte, path string) []byte {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		t.Fatal(err)
	}
	s.Linux.CgroupsPath = path
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
