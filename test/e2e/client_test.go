package e2e

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	eventstypes "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/test/testclient"
)

// These tests use containerd's Go client, as the CRI and nerdctl do, for
// what ctr cannot show: events, updates, metrics.

// clients holds the suite's containerd client.
var clients testclient.Clients

func newClient(t *testing.T) (*containerd.Client, context.Context) {
	t.Helper()
	b := needBench(t)
	client, err := clients.Get(b)
	if err != nil {
		t.Fatalf("containerd client: %v", err)
	}
	return client, namespaces.WithNamespace(testCtx(t), b.Namespace)
}

// started is a running husk task with its output.
type started struct {
	task   containerd.Task
	exit   <-chan containerd.ExitStatus
	output *testclient.SyncBuffer
}

// startTask creates and starts a husk container running args in busybox.
func startTask(t *testing.T, id string, args []string, opts ...oci.SpecOpts) started {
	t.Helper()
	return startTaskOn(t, husk, id, args, opts...)
}

// startTaskOn is startTask on the given runtime.
func startTaskOn(t *testing.T, runtime, id string, args []string, opts ...oci.SpecOpts) started {
	t.Helper()
	cl, ctx := newClient(t)
	img, err := cl.GetImage(ctx, devenv.BusyboxRef)
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs(args...)}, opts...)
	c, err := cl.NewContainer(ctx, id,
		containerd.WithNewSnapshot(id+"-snap", img),
		containerd.WithNewSpec(specOpts...),
		containerd.WithRuntime(runtime, nil))
	if err != nil {
		t.Fatalf("new container: %v", err)
	}
	out := &testclient.SyncBuffer{}
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		t.Fatalf("new task: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), bench.Namespace), 30*time.Second)
		defer cancel()
		_ = task.Kill(ctx, syscall.SIGKILL)
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			t.Logf("cleanup: task delete: %v", err)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			t.Logf("cleanup: container delete: %v", err)
		}
	})
	exit, err := task.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	return started{task: task, exit: exit, output: out}
}

// waitOutput waits until the task has printed want.
func (s started) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.output.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("task never printed %q; output so far: %q", want, s.output.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s started) waitExit(t *testing.T) uint32 {
	t.Helper()
	select {
	case st := <-s.exit:
		code, _, err := st.Result()
		if err != nil {
			t.Fatalf("exit status: %v", err)
		}
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("task did not exit within 30s")
	}
	return 0
}

func TestKillSignals(t *testing.T) {
	// The init traps each catchable signal and exits with a code naming
	// it, proving which signal arrived; SIGKILL cannot be trapped: 137.
	tests := []struct {
		sig  syscall.Signal
		trap string
		want uint32
	}{
		{syscall.SIGTERM, "TERM", 10},
		{syscall.SIGINT, "INT", 11},
		{syscall.SIGHUP, "HUP", 12},
		{syscall.SIGUSR1, "USR1", 13},
		{syscall.SIGUSR2, "USR2", 14},
		{syscall.SIGQUIT, "QUIT", 15},
		{syscall.SIGKILL, "", 128 + uint32(syscall.SIGKILL)},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			script := "echo ready; sleep 1000 & wait"
			if tt.trap != "" {
				script = "trap 'exit " + itoa(tt.want) + "' " + tt.trap + "; " + script
			}
			s := startTask(t, name(t, ""), []string{"sh", "-c", script})
			s.waitOutput(t, "ready")
			_, ctx := newClient(t)
			if err := s.task.Kill(ctx, tt.sig); err != nil {
				t.Fatalf("kill: %v", err)
			}
			if got := s.waitExit(t); got != tt.want {
				t.Fatalf("exit status after %v = %d, want %d", tt.sig, got, tt.want)
			}
		})
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestKillAllSignalsEveryProcess(t *testing.T) {
	s := startTask(t, name(t, ""), []string{"sh", "-c", "sleep 1000 & sleep 1000 & echo ready; wait"})
	s.waitOutput(t, "ready")
	_, ctx := newClient(t)
	if err := s.task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil {
		t.Fatalf("kill --all: %v", err)
	}
	if got := s.waitExit(t); got != 137 {
		t.Fatalf("exit status = %d, want 137", got)
	}
}

// subscribe collects task events of the bench's namespace from now on.
func subscribe(t *testing.T, topics ...string) func(timeout time.Duration, match func(topic string, ev any) bool) bool {
	t.Helper()
	cl, ctx := newClient(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	var filters []string
	for _, tp := range topics {
		filters = append(filters, `topic=="`+tp+`"`)
	}
	ch, errs := cl.Subscribe(ctx, filters...)
	type event struct {
		topic string
		ev    any
	}
	got := make(chan event, 64)
	go func() {
		for {
			select {
			case e := <-ch:
				v, err := typeurl.UnmarshalAny(e.Event)
				if err == nil {
					got <- event{e.Topic, v}
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(timeout time.Duration, match func(topic string, ev any) bool) bool {
		deadline := time.After(timeout)
		for {
			select {
			case e := <-got:
				if match(e.topic, e.ev) {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
}

func TestPauseResume(t *testing.T) {
	id := name(t, "")
	await := subscribe(t, "/tasks/paused", "/tasks/resumed")
	s := startTask(t, id, []string{"sh", "-c", "echo ready; sleep 1000"})
	s.waitOutput(t, "ready")
	_, ctx := newClient(t)

	if err := s.task.Pause(ctx); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if st, err := s.task.Status(ctx); err != nil || st.Status != containerd.Paused {
		t.Fatalf("status after pause = %v, %v; want paused", st.Status, err)
	}
	if !await(10*time.Second, func(topic string, ev any) bool {
		e, ok := ev.(*eventstypes.TaskPaused)
		return ok && e.ContainerID == id
	}) {
		t.Fatal("no TaskPaused event")
	}
	// A paused container cannot be paused again.
	if err := s.task.Pause(ctx); err == nil {
		t.Fatal("second pause succeeded, want a failed-precondition error")
	}
	if err := s.task.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if st, err := s.task.Status(ctx); err != nil || st.Status != containerd.Running {
		t.Fatalf("status after resume = %v, %v; want running", st.Status, err)
	}
	if !await(10*time.Second, func(topic string, ev any) bool {
		e, ok := ev.(*eventstypes.TaskResumed)
		return ok && e.ContainerID == id
	}) {
		t.Fatal("no TaskResumed event")
	}
}

// memoryLimit reads the memory limit from the task's metrics.
func memoryLimit(t *testing.T, task containerd.Task) uint64 {
	t.Helper()
	_, ctx := newClient(t)
	m, err := task.Metrics(ctx)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		t.Fatalf("decoding metrics: %v", err)
	}
	switch s := v.(type) {
	case *v1stats.Metrics:
		if s.Memory == nil || s.Memory.Usage == nil {
			t.Fatalf("v1 metrics lack memory: %v", s)
		}
		if s.CPU == nil || s.Pids == nil || s.Pids.Current == 0 {
			t.Errorf("v1 metrics lack cpu or pids: cpu=%v pids=%v", s.CPU, s.Pids)
		}
		return s.Memory.Usage.Limit
	case *v2stats.Metrics:
		if s.Memory == nil {
			t.Fatalf("v2 metrics lack memory: %v", s)
		}
		if s.Pids == nil || s.Pids.Current == 0 {
			t.Errorf("v2 metrics lack pids: %v", s.Pids)
		}
		return s.Memory.UsageLimit
	}
	t.Fatalf("metrics of unexpected type %T", v)
	return 0
}

func TestUpdateMemoryLimitAndStats(t *testing.T) {
	const before, after = 64 << 20, 48 << 20
	s := startTask(t, name(t, ""), []string{"sh", "-c", "echo ready; sleep 1000"}, oci.WithMemoryLimit(before))
	s.waitOutput(t, "ready")
	if got := memoryLimit(t, s.task); got != before {
		t.Fatalf("memory limit = %d, want %d", got, before)
	}
	_, ctx := newClient(t)
	limit := int64(after)
	if err := s.task.Update(ctx, containerd.WithResources(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
	})); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := memoryLimit(t, s.task); got != after {
		t.Fatalf("memory limit after update = %d, want %d", got, after)
	}
}

// TestOOMEvent: an OOM kill has its TaskOOM event, published before the
// TaskExit of the process (as with runc; the CRI reads the reason from it).
func TestOOMEvent(t *testing.T) {
	id := name(t, "")
	await := subscribe(t, "/tasks/oom", "/tasks/exit")
	// tail keeps the whole of an endless line in memory.
	s := startTask(t, id, []string{"tail", "/dev/zero"}, oci.WithMemoryLimit(32<<20))
	exitFirst := false
	if !await(60*time.Second, func(topic string, ev any) bool {
		switch e := ev.(type) {
		case *eventstypes.TaskOOM:
			return e.ContainerID == id
		case *eventstypes.TaskExit:
			exitFirst = exitFirst || (e.ContainerID == id && e.ID == id)
		}
		return false
	}) {
		t.Fatal("no TaskOOM event within 60s")
	}
	if exitFirst {
		t.Fatal("TaskExit was published before TaskOOM")
	}
	if got := s.waitExit(t); got != 137 {
		t.Fatalf("OOM-killed task exit status = %d, want 137", got)
	}
}

func TestLifecycleEvents(t *testing.T) {
	id := name(t, "")
	await := subscribe(t, "/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", "/tasks/delete")
	s := startTask(t, id, []string{"sh", "-c", "echo ready; sleep 1000"})
	s.waitOutput(t, "ready")
	_, ctx := newClient(t)
	pspec := &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}
	p, err := s.task.Exec(ctx, "x1", pspec, cio.NullIO)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	pexit, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("exec wait: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatalf("exec start: %v", err)
	}
	<-pexit
	if _, err := p.Delete(ctx); err != nil {
		t.Fatalf("exec delete: %v", err)
	}
	if err := s.task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	s.waitExit(t)
	if _, err := s.task.Delete(ctx); err != nil {
		t.Fatalf("delete: %v", err)
	}

	want := []string{"/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", "/tasks/exit", "/tasks/delete"}
	for _, topic := range want {
		if !await(10*time.Second, func(tp string, ev any) bool { return tp == topic && containerOf(ev) == id }) {
			t.Fatalf("event %s for %s not seen (in order %v)", topic, id, want)
		}
	}
}

func containerOf(ev any) string {
	switch e := ev.(type) {
	case *eventstypes.TaskCreate:
		return e.ContainerID
	case *eventstypes.TaskStart:
		return e.ContainerID
	case *eventstypes.TaskExecAdded:
		return e.ContainerID
	case *eventstypes.TaskExecStarted:
		return e.ContainerID
	case *eventstypes.TaskExit:
		return e.ContainerID
	case *eventstypes.TaskDelete:
		return e.ContainerID
	}
	return ""
}
