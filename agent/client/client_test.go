package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/agent/api"
)

func validStats() *api.StatsContainerResponse {
	v, err := proto.Marshal(&cgroup2stats.Metrics{
		Pids:   &cgroup2stats.PidsStat{Current: 3, Limit: 100},
		Memory: &cgroup2stats.MemoryStat{Usage: 1 << 20, UsageLimit: 1 << 30},
	})
	if err != nil {
		panic(err)
	}
	return &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL, Value: v}
}

// TestCallsCarryRequestsAndReplies calls every RPC of a well-behaved
// agent: each request arrives as sent and each reply comes back as the
// agent gave it.
func TestCallsCarryRequestsAndReplies(t *testing.T) {
	checkGoroutines(t)
	f := newFakeAgent()
	c := serve(t, f, Options{})
	ctx := context.Background()

	check, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if check.ProtocolVersion != api.ProtocolVersion || check.AgentVersion != "v0.1.0" || check.KernelRelease != "6.1.0-28-cloud-amd64" || check.BootTime.UnixNano() != 1_700_000_000_000_000_000 {
		t.Errorf("Check = %+v", check)
	}

	if err := c.CreateSandbox(ctx, "pod1", "web"); err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	if r := f.last().(*api.CreateSandboxRequest); r.GetSandboxId() != "pod1" || r.GetHostname() != "web" {
		t.Errorf("CreateSandbox sent %v", r)
	}

	stdio := Stdio{Stdin: api.NewStreamID(), Stdout: api.NewStreamID(), Terminal: true}
	pid, err := c.CreateContainer(ctx, CreateContainerRequest{
		ContainerID: "c1",
		Spec:        []byte(`{"ociVersion":"1.2.0"}`),
		Rootfs:      Rootfs{DiskSerial: "husk-c1", FSType: "erofs", Options: []string{"noatime"}, ReadOnly: true},
		Stdio:       stdio,
	})
	if err != nil || pid != 42 {
		t.Fatalf("CreateContainer = %d, %v", pid, err)
	}
	want := &api.CreateContainerRequest{
		ContainerId: "c1",
		Spec:        []byte(`{"ociVersion":"1.2.0"}`),
		Rootfs:      &api.Rootfs{DiskSerial: "husk-c1", Fstype: "erofs", Options: []string{"noatime"}, Readonly: true},
		Stdio:       &api.Stdio{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Terminal: true},
	}
	if r := f.last(); !proto.Equal(r, want) {
		t.Errorf("CreateContainer sent %v, want %v", r, want)
	}
	// A root already in the guest sends no rootfs at all.
	if _, err := c.CreateContainer(ctx, CreateContainerRequest{ContainerID: "c2", Spec: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if r := f.last().(*api.CreateContainerRequest); r.Rootfs != nil {
		t.Errorf("CreateContainer without a disk sent rootfs %v", r.Rootfs)
	}

	if pid, err := c.StartContainer(ctx, "c1"); err != nil || pid != 42 {
		t.Fatalf("StartContainer = %d, %v", pid, err)
	}
	if err := c.ExecProcess(ctx, ExecProcessRequest{ContainerID: "c1", ExecID: "e1", Process: []byte(`{"args":["sh"]}`)}); err != nil {
		t.Fatalf("ExecProcess: %v", err)
	}
	if pid, err := c.StartProcess(ctx, "c1", "e1"); err != nil || pid != 42 {
		t.Fatalf("StartProcess = %d, %v", pid, err)
	}
	if err := c.SignalProcess(ctx, "c1", "", 9, true); err != nil {
		t.Fatalf("SignalProcess: %v", err)
	}
	if r := f.last().(*api.SignalProcessRequest); r.GetSignal() != 9 || !r.GetAll() || r.GetExecId() != "" {
		t.Errorf("SignalProcess sent %v", r)
	}

	w, err := c.WaitProcess(ctx, "c1", "e1", 1500*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitProcess: %v", err)
	}
	if !w.Exited || w.ExitStatus != 137 || w.Pid != 42 || w.ExitedAt.UnixNano() != 1_700_000_001_000_000_000 {
		t.Errorf("WaitProcess = %+v", w)
	}
	if r := f.last().(*api.WaitProcessRequest); r.GetTimeoutMs() != 1500 {
		t.Errorf("WaitProcess sent timeout_ms %d, want 1500", r.GetTimeoutMs())
	}
	f.wait = &api.WaitProcessResponse{Exited: false, ExitStatus: 999, Pid: 0} // meaningless until exited
	if w, err := c.WaitProcess(ctx, "c1", "", 0); err != nil || w != (WaitResult{}) {
		t.Errorf("WaitProcess of a running process = %+v, %v; want the zero result", w, err)
	}

	for name, fn := range map[string]func() error{
		"CloseStdin":      func() error { return c.CloseStdin(ctx, "c1", "e1") },
		"ResizePty":       func() error { return c.ResizePty(ctx, "c1", "", 80, 24) },
		"DeleteProcess":   func() error { return c.DeleteProcess(ctx, "c1", "e1") },
		"PauseContainer":  func() error { return c.PauseContainer(ctx, "c1") },
		"ResumeContainer": func() error { return c.ResumeContainer(ctx, "c1") },
		"UpdateContainer": func() error { return c.UpdateContainer(ctx, "c1", []byte(`{"pids":{"limit":10}}`)) },
		"DeleteContainer": func() error { return c.DeleteContainer(ctx, "c1") },
		"DestroySandbox":  func() error { return c.DestroySandbox(ctx, "pod1") },
	} {
		if err := fn(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	stats, err := c.StatsContainer(ctx, "c1")
	if err != nil {
		t.Fatalf("StatsContainer: %v", err)
	}
	m, ok := stats.Metrics.(*cgroup2stats.Metrics)
	if !ok || stats.TypeURL != MetricsV2TypeURL || m.GetPids().GetCurrent() != 3 || m.GetMemory().GetUsage() != 1<<20 {
		t.Errorf("StatsContainer = %+v", stats)
	}
	v1, err := proto.Marshal(&cgroup1stats.Metrics{Pids: &cgroup1stats.PidsStat{Current: 7}})
	if err != nil {
		t.Fatal(err)
	}
	f.stats = &api.StatsContainerResponse{TypeUrl: MetricsV1TypeURL, Value: v1}
	if stats, err := c.StatsContainer(ctx, "c1"); err != nil || stats.Metrics.(*cgroup1stats.Metrics).GetPids().GetCurrent() != 7 {
		t.Errorf("StatsContainer (v1) = %+v, %v", stats, err)
	}

	if pids, err := c.ListPids(ctx, "c1"); err != nil || len(pids) != 3 || pids[2] != MaxPid {
		t.Errorf("ListPids = %v, %v", pids, err)
	}
	if ids, err := c.WaitOOM(ctx, time.Second); err != nil || strings.Join(ids, ",") != "c1,pod-2.web_0" {
		t.Errorf("WaitOOM = %q, %v", ids, err)
	}
	set := time.Unix(0, 1_700_000_002_000_000_000)
	if now, err := c.GuestTime(ctx, set); err != nil || !now.Equal(set) {
		t.Errorf("GuestTime = %v, %v", now, err)
	}
	if r := f.last().(*api.GuestTimeRequest); r.GetSetUnixNano() != set.UnixNano() {
		t.Errorf("GuestTime sent %v", r)
	}
	if _, err := c.GuestTime(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := f.last().(*api.GuestTimeRequest); r.GetSetUnixNano() != 0 {
		t.Errorf("GuestTime without a time to set sent %v", r)
	}
	entries := []*api.FileEntry{{Type: api.FileEntry_DIRECTORY, Mode: 0o755}, {Path: "key", Type: api.FileEntry_REGULAR, Mode: 0o644, Data: []byte("v")}}
	if p, err := c.SyncVolume(ctx, "v1", entries, true); err != nil || p != "/run/husk/volumes/v1" {
		t.Errorf("SyncVolume = %q, %v", p, err)
	}
	if r := f.last().(*api.SyncVolumeRequest); r.GetVolumeId() != "v1" || !r.GetComplete() || len(r.GetEntries()) != 2 || string(r.GetEntries()[1].GetData()) != "v" {
		t.Errorf("SyncVolume sent %v", r)
	}
	if err := c.Broken(); err != nil {
		t.Errorf("Broken after good calls = %v", err)
	}
}

// TestMetricsTypeURLsAreContainerds checks the allow-list against the
// names containerd's cgroups package gives its messages (typeurl names a
// proto message by its full name).
func TestMetricsTypeURLsAreContainerds(t *testing.T) {
	for url, m := range map[string]proto.Message{
		MetricsV1TypeURL: &cgroup1stats.Metrics{},
		MetricsV2TypeURL: &cgroup2stats.Metrics{},
	} {
		if got := string(m.ProtoReflect().Descriptor().FullName()); got != url {
			t.Errorf("%T is named %q, the allow-list says %q", m, got, url)
		}
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(a.GetTypeUrl(), "/"+url) {
			t.Errorf("anypb names %T %q", m, a.GetTypeUrl())
		}
	}
}

// TestLongPollDeadlineIncludesItsTimeout checks that WaitProcess and
// WaitOOM run under their timeout plus the call timeout, and every other
// call under the call timeout, as the agent sees the deadline.
func TestLongPollDeadlineIncludesItsTimeout(t *testing.T) {
	f := newFakeAgent()
	c := serve(t, f, Options{CallTimeout: time.Minute})
	ctx := context.Background()
	if _, err := c.WaitProcess(ctx, "c1", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitOOM(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, method := range []string{"WaitProcess", "WaitOOM"} {
		if left := f.deadlines[method]; left <= time.Hour || left > time.Hour+time.Minute {
			t.Errorf("%s's deadline was %v away, want in (1h, 1h1m]", method, left)
		}
	}
	if left := f.deadlines["Check"]; left <= 0 || left > time.Minute {
		t.Errorf("Check's deadline was %v away, want in (0, 1m]", left)
	}
}

// TestAgentErrorsAreErrdefs checks that an agent's refusal reaches the
// host as the errdefs class the agent meant, not as a bad reply, and that
// the connection survives it.
func TestAgentErrorsAreErrdefs(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
	}{
		{"not found", errgrpc.ToGRPC(errdefs.ErrNotFound.WithMessage("container c1")), errdefs.IsNotFound},
		{"already exists", errgrpc.ToGRPC(errdefs.ErrAlreadyExists), errdefs.IsAlreadyExists},
		{"failed precondition", errgrpc.ToGRPC(errdefs.ErrFailedPrecondition), errdefs.IsFailedPrecondition},
		{"not implemented", errgrpc.ToGRPC(errdefs.ErrNotImplemented), errdefs.IsNotImplemented},
		{"invalid argument", status.Error(codes.InvalidArgument, "bad spec"), errdefs.IsInvalidArgument},
		{"a code gRPC does not define", status.Error(codes.Code(99), "?"), errdefs.IsUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent()
			f.err = tc.err
			c := serve(t, f, Options{})
			_, err := c.StartContainer(context.Background(), "c1")
			if err == nil || !tc.is(err) {
				t.Fatalf("StartContainer = %v; want the class of %v", err, tc.err)
			}
			if errors.Is(err, ErrBadReply) || errors.Is(err, ErrBroken) {
				t.Errorf("a refusal taken for a bad reply: %v", err)
			}
			if !strings.Contains(err.Error(), "StartContainer") {
				t.Errorf("error %q does not name the call", err)
			}
			if err := c.Broken(); err != nil {
				t.Errorf("Broken after a refusal = %v", err)
			}
		})
	}
}

// TestAgentErrorIsBounded checks that an agent's error message is cut to
// a bounded, printable string, and its details dropped.
func TestAgentErrorIsBounded(t *testing.T) {
	f := newFakeAgent()
	st, err := status.New(codes.NotFound, strings.Repeat("x", 100_000)+"\x1b[2J").WithDetails(&api.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	f.err = st.Err()
	c := serve(t, f, Options{})
	err = c.DeleteContainer(context.Background(), "c1")
	if !errdefs.IsNotFound(err) {
		t.Fatalf("DeleteContainer = %v, want NotFound", err)
	}
	if n := len(err.Error()); n > maxErrorMessage+200 {
		t.Errorf("error of %d bytes", n)
	}
	if strings.ContainsRune(err.Error(), '\x1b') {
		t.Errorf("control character passed through: %q", err)
	}
}

// TestInvalidRequestsAreNotSent checks that ids the agent would have to
// reject are refused on the host, as InvalidArgument, without a call.
func TestInvalidRequestsAreNotSent(t *testing.T) {
	f := newFakeAgent()
	c := serve(t, f, Options{})
	ctx := context.Background()
	for name, err := range map[string]error{
		"empty container id":      c.DeleteContainer(ctx, ""),
		"slash in container id":   c.PauseContainer(ctx, "../etc"),
		"long container id":       c.ResumeContainer(ctx, strings.Repeat("a", MaxID+1)),
		"empty exec id for exec":  c.ExecProcess(ctx, ExecProcessRequest{ContainerID: "c1", Process: []byte("{}")}),
		"space in exec id":        c.SignalProcess(ctx, "c1", "e 1", 9, false),
		"empty sandbox id":        c.CreateSandbox(ctx, "", "h"),
		"no spec":                 func() error { _, err := c.CreateContainer(ctx, CreateContainerRequest{ContainerID: "c1"}); return err }(),
		"no process":              c.ExecProcess(ctx, ExecProcessRequest{ContainerID: "c1", ExecID: "e1"}),
		"time before 1970":        func() error { _, err := c.GuestTime(ctx, time.Unix(-5, 0)); return err }(),
		"empty exec id to delete": c.DeleteProcess(ctx, "c1", ""),
		"volume id ..":            func() error { _, err := c.SyncVolume(ctx, "..", nil, false); return err }(),
		"long volume id":          func() error { _, err := c.SyncVolume(ctx, strings.Repeat("v", 65), nil, false); return err }(),
		"volume over ttrpc's limit": func() error {
			big := []*api.FileEntry{{Type: api.FileEntry_REGULAR, Data: make([]byte, MaxVolumeRequest)}}
			_, err := c.SyncVolume(ctx, "v1", big, false)
			return err
		}(),
	} {
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if r := f.last(); r != nil {
		t.Errorf("the agent received %v", r)
	}
}

// TestCallsAfterCloseFail checks that a closed Client refuses calls with
// ErrClosed, and that Close may be called twice.
func TestCallsAfterCloseFail(t *testing.T) {
	checkGoroutines(t)
	c := serve(t, newFakeAgent(), Options{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Check after Close = %v, want ErrClosed", err)
	}
	if err := c.Broken(); !errors.Is(err, ErrClosed) {
		t.Errorf("Broken after Close = %v, want ErrClosed", err)
	}
}

// TestCallerContextIsHonoured checks that a caller's cancellation ends a
// call whose reply has not come, and is reported as the caller's.
func TestCallerContextIsHonoured(t *testing.T) {
	f := newFakeAgent()
	f.block = map[string]bool{"Check": true}
	c := serve(t, f, Options{CallTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if _, err := c.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Check(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "caller's deadline") {
		t.Fatalf("Check = %v, want the caller's deadline", err)
	}
}
