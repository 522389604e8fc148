package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// moduleLogged is a slog.Handler that closes begun at the first line a
// hook module logs.
type moduleLogged struct {
	once  sync.Once
	begun chan struct{}
}

func (h *moduleLogged) Enabled(context.Context, slog.Level) bool { return true }
func (h *moduleLogged) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "from" && a.Value.String() == "module" {
			h.once.Do(func() { close(h.begun) })
			return false
		}
		return true
	})
	return nil
}
func (h *moduleLogged) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *moduleLogged) WithGroup(string) slog.Handler      { return h }

// slowDeadline is the deadline of slowHook's calls: far above prompt.
const slowDeadline = 3 * time.Second

// prompt bounds what a task must answer in while one of its hooks decides.
const prompt = 500 * time.Millisecond

// slowHook is a hook at point that runs until its deadline
// (testdata/slow.wat); it then fails, and the step goes on.
func slowHook(t *testing.T, point string) config.Hook {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slow.wasm")
	if err := os.WriteFile(path, wasmtest.WAT(t, filepath.Join("testdata", "slow.wat")), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.Hook{Name: "slow", Module: path, Points: []string{point}, Kind: config.HookCheck, Mode: config.HookEnforce,
		OnError: config.HookAllow, Timeout: config.Duration(slowDeadline.String()), MemoryLimit: "1MiB"}
}

// timed runs f, which must answer promptly.
func timed(t *testing.T, what string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	if took := time.Since(start); took > prompt {
		t.Errorf("%s took %v while a hook of the task was deciding", what, took.Round(time.Millisecond))
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// TestExecAdmissionLeavesTaskUnlocked: while a slow hook decides on an
// exec, the task answers State and Kill, records its init's exit and is
// deleted promptly; the exec, admitted after the task is gone, fails as
// not found and leaves no process behind.
func TestExecAdmissionLeavesTaskUnlocked(t *testing.T) {
	ctx := context.Background()
	m, task := hookedTask(t, slowHook(t, "process.exec"))

	logged := &moduleLogged{begun: make(chan struct{})}
	execCtx := logging.WithLogger(ctx, slog.New(logged))
	done := make(chan error, 1)
	go func() { done <- task.Exec(execCtx, "e1", &specs.Process{Args: []string{"sh"}}, handler.Stdio{}) }()
	select {
	case <-logged.begun:
	case err := <-done:
		t.Fatalf("exec returned before its hook ran: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the exec's hook never ran")
	}

	timed(t, "State", func() error {
		st, err := task.Status("")
		if err == nil && st.State != Running {
			t.Errorf("state %v, want running", st.State)
		}
		return err
	})
	timed(t, "Kill", func() error { return task.Kill(ctx, "", syscall.SIGKILL, false) })
	timed(t, "recording the init's exit", func() error {
		wctx, cancel := context.WithTimeout(ctx, slowDeadline)
		defer cancel()
		_, err := task.Wait(wctx, "")
		return err
	})
	timed(t, "Delete", func() error { _, err := task.Delete(ctx, ""); return err })
	select {
	case err := <-done:
		t.Fatalf("the exec's hook ended before the checks did (%v): they prove nothing", err)
	default:
	}

	err := <-done
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("exec admitted after its task was deleted: %v, want not found", err)
	}
	if n := len(task.c.(*fakeContainer).execs); n != 0 {
		t.Fatalf("exec into a deleted task created %d processes", n)
	}
	task.mu.Lock()
	n := len(task.execs)
	task.mu.Unlock()
	if n != 0 {
		t.Fatalf("a deleted task holds %d execs", n)
	}
	m.Deleted(ctx, task)
}

// TestDeleteHookLeavesTaskUnlocked: container.delete's hooks are told
// without the task's lock held, so a slow one does not hold up State and
// Kill, which answer that the task is deleted.
func TestDeleteHookLeavesTaskUnlocked(t *testing.T) {
	ctx := context.Background()
	m, task := hookedTask(t, slowHook(t, "container.delete"))
	if err := task.Kill(ctx, "", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Wait(ctx, ""); err != nil {
		t.Fatal(err)
	}
	logged := &moduleLogged{begun: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := task.Delete(logging.WithLogger(ctx, slog.New(logged)), "")
		done <- err
	}()
	select {
	case <-logged.begun:
	case err := <-done:
		t.Fatalf("delete returned before its hook ran: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the delete's hook never ran")
	}
	gone := func(err error) error {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("%v, want not found", err)
	}
	timed(t, "State", func() error {
		st, err := task.Status("")
		if err == nil && st.State != Deleted {
			return fmt.Errorf("state %v, want deleted", st.State)
		}
		return err
	})
	timed(t, "Kill", func() error { return gone(task.Kill(ctx, "", syscall.SIGKILL, false)) })
	select {
	case err := <-done:
		t.Fatalf("the delete's hook ended before the checks did (%v): they prove nothing", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if !task.c.(*fakeContainer).deleted {
		t.Fatal("the container was not deleted")
	}
	m.Deleted(ctx, task)
}

// TestExecSameIDOnce: execs of one id racing through their hooks (asked
// without the task's lock) add the exec once; the others fail as already
// existing, having created nothing.
func TestExecSameIDOnce(t *testing.T) {
	const racers = 8
	ctx := context.Background()
	m, task := hookedTask(t, decisionHook(t, `{"allow":true}`, "process.exec"))
	defer m.Deleted(ctx, task)
	errs := make(chan error, racers)
	var start sync.WaitGroup
	start.Add(1)
	for range racers {
		go func() {
			start.Wait()
			errs <- task.Exec(ctx, "e1", &specs.Process{Args: []string{"sh"}}, handler.Stdio{})
		}()
	}
	start.Done()
	added := 0
	for range racers {
		switch err := <-errs; {
		case err == nil:
			added++
		case !errors.Is(err, errdefs.ErrAlreadyExists):
			t.Errorf("a racing exec of the same id: %v, want already exists", err)
		}
	}
	if n := len(task.c.(*fakeContainer).execs); added != 1 || n != 1 {
		t.Fatalf("%d execs added and %d processes created for one id, want 1 and 1", added, n)
	}
}

// TestSandboxDeleteHookLeavesManagerUnlocked: a pod's teardown, where its
// sandbox.delete hooks are asked, runs without the manager's lock, so a
// slow hook holds up only that pod: another pod's container is created,
// and another task answers State, while it decides (before, Create waited
// for the hook's whole deadline). A create of the torn-down pod's own id
// waits for the teardown, whose state directory it would use.
func TestSandboxDeleteHookLeavesManagerUnlocked(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	cfg.Hooks = []config.Hook{slowHook(t, "sandbox.delete")}
	m := NewManager(&podHandler{name: "linux"})
	create := func(ctx context.Context, id string) (*Task, error) {
		req := podReq(t, &cfg, id, nil)
		req.Spec.Process = &specs.Process{Args: []string{"sleep", "1000"}}
		req.Spec.Root = &specs.Root{Path: "rootfs"}
		return m.Create(ctx, req, &recorder{})
	}
	a, err := create(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := create(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, ""); err != nil {
		t.Fatal(err)
	}
	logged := &moduleLogged{begun: make(chan struct{})}
	done := make(chan bool, 1)
	go func() { done <- m.Deleted(logging.WithLogger(ctx, slog.New(logged)), a) }()
	select {
	case <-logged.begun:
	case <-done:
		t.Fatal("pod a was torn down before its sandbox.delete hook ran")
	case <-time.After(30 * time.Second):
		t.Fatal("pod a's sandbox.delete hook never ran")
	}

	timed(t, "creating a container of another pod", func() error {
		_, err := create(ctx, "c")
		return err
	})
	timed(t, "State of another pod's task", func() error {
		_, err := b.Status("")
		return err
	})
	// Pod a again: its create waits for the teardown.
	again := make(chan error, 1)
	go func() {
		_, err := create(ctx, "a")
		again <- err
	}()
	select {
	case <-done:
		t.Fatal("the sandbox.delete hook ended before the checks did: they prove nothing")
	case err := <-again:
		t.Fatalf("pod a created again (%v) while its teardown ran", err)
	case <-time.After(prompt):
	}
	if !<-done {
		t.Fatal("Deleted did not report pod a gone")
	}
	if err := <-again; err != nil {
		t.Fatalf("pod a, created again after its teardown: %v", err)
	}
}
