package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent"
	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/runtime/linux"
	"github.com/huskrt/husk/test/devenv"
)

// init keeps the main thread to main's goroutine, as the shim's and the
// agent's mains do (see cmd/containerd-shim-husk-v2).
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == linux.InitArg {
		linux.Init() // libcontainer re-executes the test binary as a container's init
	}
	os.Exit(m.Run())
}

// bench is an agent served on Unix sockets, as the host reaches it through
// hybrid vsock, with a client and a busybox root filesystem.
type bench struct {
	t       *testing.T
	ctx     context.Context
	cl      *client.Client
	streams string // the stream socket
	// dial connects to an agent port as the host does: the Unix sockets
	// standing in for vsock, or a serial session.
	dial   func(port uint32) (net.Conn, error)
	rootfs string
	state  string
}

func newBench(t *testing.T) *bench {
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
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ctx, agentL, streamL) }()
	conn, err := net.Dial("unix", agentL.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(conn, client.Options{})
	t.Cleanup(func() {
		cl.Close()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	streams := streamL.Addr().String()
	dial := func(port uint32) (net.Conn, error) {
		if port != api.StreamPort {
			return nil, fmt.Errorf("port %d: %w", port, syscall.ECONNREFUSED)
		}
		return net.Dial("unix", streams)
	}
	return &bench{t: t, ctx: ctx, cl: cl, streams: streams, dial: dial, rootfs: rootfs, state: state}
}

// stream attaches a new stream and returns its id and connection.
func (b *bench) stream() (uint64, net.Conn) {
	b.t.Helper()
	c, err := b.dial(api.StreamPort)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	id := api.NewStreamID()
	if err := api.WriteStreamHeader(c, id); err != nil {
		b.t.Fatal(err)
	}
	return id, c
}

// spec is runc's default spec running args in the busybox rootfs.
func (b *bench) spec(terminal bool, args ...string) []byte {
	b.t.Helper()
	s := specconv.Example()
	s.Root = &specs.Root{Path: b.rootfs}
	s.Process.Args = args
	s.Process.Terminal = terminal
	s.Hostname = "agent-test"
	s.Linux.CgroupsPath = "/husk-agent-test/" + strings.ReplaceAll(b.t.Name(), "/", "-")
	out, err := json.Marshal(s)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// wait waits for a process's exit.
func (b *bench) wait(id, exec string) client.WaitResult {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r, err := b.cl.WaitProcess(b.ctx, id, exec, 2*time.Second)
		if err != nil {
			b.t.Fatalf("wait %s/%s: %v", id, exec, err)
		}
		if r.Exited {
			return r
		}
	}
	b.t.Fatalf("%s/%s did not exit", id, exec)
	return client.WaitResult{}
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading a stream: %v", err)
	}
	return string(b)
}

// TestContainerRunsWithStreams: a container's stdout, stderr and stdin go
// over streams of their own, its exit status comes back, and deleting it
// leaves nothing in the agent's state.
func TestContainerRunsWithStreams(t *testing.T) {
	runWithStreams(t, newBench(t))
}

func runWithStreams(t *testing.T, b *bench) {
	check, err := b.cl.Check(b.ctx)
	if err != nil || check.ProtocolVersion != api.ProtocolVersion || check.KernelRelease == "" {
		t.Fatalf("check: %+v, %v", check, err)
	}
	if err := b.cl.CreateSandbox(b.ctx, "pod", "pod-host"); err != nil {
		t.Fatal(err)
	}
	inID, in := b.stream()
	outID, out := b.stream()
	errID, errc := b.stream()
	pid, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{
		ContainerID: "c1",
		Spec:        b.spec(false, "sh", "-c", "echo hello; read line; echo got $line; echo oops >&2; exit 3"),
		Stdio:       client.Stdio{Stdin: inID, Stdout: outID, Stderr: errID},
	})
	if err != nil || pid == 0 {
		t.Fatalf("create: pid %d, %v", pid, err)
	}
	if _, err := b.cl.StartContainer(b.ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("input\n")); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if got := readAll(t, out); got != "hello\ngot input\n" {
		t.Errorf("stdout %q", got)
	}
	if got := readAll(t, errc); got != "oops\n" {
		t.Errorf("stderr %q", got)
	}
	if r := b.wait("c1", ""); r.ExitStatus != 3 || r.Pid != pid {
		t.Errorf("exit %+v, want status 3 of pid %d", r, pid)
	}
	if err := b.cl.DeleteContainer(b.ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.cl.WaitProcess(b.ctx, "c1", "", time.Second); !errdefs.IsNotFound(err) {
		t.Errorf("wait on a deleted container: %v, want not found", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(b.state, "containers")); len(ents) != 0 {
		t.Errorf("deleted container left %d bundles", len(ents))
	}
	if err := b.cl.DestroySandbox(b.ctx, "pod"); err != nil {
		t.Fatal(err)
	}
}

// TestExecSignalPidsPause: an exec runs beside the init with its own
// streams, pids list the container's processes, pause and resume work,
// and a signal ends the init with 128+n.
func TestExecSignalPidsPause(t *testing.T) {
	b := newBench(t)
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{ContainerID: "c2", Spec: b.spec(false, "sleep", "1000")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cl.DeleteContainer(context.Background(), "c2") })
	initPid, err := b.cl.StartContainer(b.ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	outID, out := b.stream()
	proc, _ := json.Marshal(specs.Process{Args: []string{"sh", "-c", "echo from-exec; exit 7"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	if err := b.cl.ExecProcess(b.ctx, client.ExecProcessRequest{ContainerID: "c2", ExecID: "e1", Process: proc, Stdio: client.Stdio{Stdout: outID}}); err != nil {
		t.Fatal(err)
	}
	if err := b.cl.ExecProcess(b.ctx, client.ExecProcessRequest{ContainerID: "c2", ExecID: "e1", Process: proc}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second exec e1: %v, want already exists", err)
	}
	if _, err := b.cl.StartProcess(b.ctx, "c2", "e1"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, out); got != "from-exec\n" {
		t.Errorf("exec stdout %q", got)
	}
	if r := b.wait("c2", "e1"); r.ExitStatus != 7 {
		t.Errorf("exec exit %+v, want 7", r)
	}
	if err := b.cl.DeleteProcess(b.ctx, "c2", "e1"); err != nil {
		t.Fatal(err)
	}
	pids, err := b.cl.ListPids(b.ctx, "c2")
	if err != nil || len(pids) != 1 || pids[0] != initPid {
		t.Errorf("pids %v, %v; want [%d]", pids, err, initPid)
	}
	if err := b.cl.PauseContainer(b.ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := b.cl.ResumeContainer(b.ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	st, err := b.cl.StatsContainer(b.ctx, "c2")
	if err != nil || st.Metrics == nil {
		t.Errorf("stats %+v, %v", st, err)
	}
	// The init is its PID namespace's first process: only SIGKILL ends a
	// sleep there.
	if err := b.cl.SignalProcess(b.ctx, "c2", "", uint32(syscall.SIGKILL), false); err != nil {
		t.Fatal(err)
	}
	if r := b.wait("c2", ""); r.ExitStatus != 128+uint32(syscall.SIGKILL) {
		t.Errorf("init exit %+v, want %d", r, 128+syscall.SIGKILL)
	}
}

// TestTerminal: a process with a terminal writes to one stream (stdout),
// sees a tty, and gets the size ResizePty set.
func TestTerminal(t *testing.T) {
	b := newBench(t)
	outID, out := b.stream()
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{
		ContainerID: "c3",
		Spec:        b.spec(true, "sh", "-c", "sleep 0.5; tty; stty size"),
		Stdio:       client.Stdio{Stdout: outID, Terminal: true},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cl.DeleteContainer(context.Background(), "c3") })
	if _, err := b.cl.StartContainer(b.ctx, "c3"); err != nil {
		t.Fatal(err)
	}
	if err := b.cl.ResizePty(b.ctx, "c3", "", 100, 40); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, out)
	if !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "40 100") {
		t.Errorf("terminal output %q, want a /dev/pts tty of 40 rows and 100 columns", got)
	}
	if r := b.wait("c3", ""); r.ExitStatus != 0 {
		t.Errorf("exit %+v", r)
	}
}

// TestOOMIsReported: a container killed by its memory limit is reported by
// WaitOOM.
func TestOOMIsReported(t *testing.T) {
	b := newBench(t)
	var s specs.Spec
	if err := json.Unmarshal(b.spec(false, "sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"), &s); err != nil {
		t.Fatal(err)
	}
	limit := int64(32 << 20)
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	spec, _ := json.Marshal(s)
	if _, err := b.cl.CreateContainer(b.ctx, client.CreateContainerRequest{ContainerID: "c4", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cl.DeleteContainer(context.Background(), "c4") })
	if _, err := b.cl.StartContainer(b.ctx, "c4"); err != nil {
		t.Fatal(err)
	}
	r := b.wait("c4", "")
	if r.ExitStatus != 128+uint32(syscall.SIGKILL) {
		t.Fatalf("exit %+v, want killed", r)
	}
	ids, err := b.cl.WaitOOM(b.ctx, 10*time.Second)
	if err != nil || len(ids) == 0 || ids[0] != "c4" {
		t.Fatalf("OOM events %v, %v; want [c4]", ids, err)
	}
}

// TestBadRequests: what the agent refuses, it refuses with the class the
// host maps back (invalid argument, not found, already exists), and a
// stream nobody attached fails the create within its bound.
func TestBadRequests(t *testing.T) {
	b := newBench(t)
	tests := []struct {
		name string
		req  client.CreateContainerRequest
		is   func(error) bool
	}{
		{"spec not JSON", client.CreateContainerRequest{ContainerID: "x", Spec: []byte("{")}, errdefs.IsInvalidArgument},
		{"no args", client.CreateContainerRequest{ContainerID: "x", Spec: b.spec(false)}, errdefs.IsInvalidArgument},
		{"disk that is not there", client.CreateContainerRequest{ContainerID: "x", Spec: b.spec(false, "true"),
			Rootfs: client.Rootfs{DiskSerial: "no-such-disk", FSType: "erofs"}}, errdefs.IsNotFound},
		{"stream never attached", client.CreateContainerRequest{ContainerID: "x", Spec: b.spec(false, "true"),
			Stdio: client.Stdio{Stdout: 12345}}, errdefs.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.cl.CreateContainer(b.ctx, tc.req)
			if err == nil || !tc.is(err) {
				t.Fatalf("create: %v", err)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(b.state, "containers")); len(ents) != 0 {
		t.Errorf("failed creates left %d bundles", len(ents))
	}
	if _, err := b.cl.StartContainer(b.ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("start of an unknown container: %v", err)
	}
}

// TestBadStreamHeaderIsDropped: a connection that does not start with a
// stream header is closed by the agent.
func TestBadStreamHeaderIsDropped(t *testing.T) {
	b := newBench(t)
	c, err := net.Dial("unix", b.streams)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte("x"), api.StreamHeaderSize)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after a bad header: %v, want EOF (closed)", err)
	}
}
