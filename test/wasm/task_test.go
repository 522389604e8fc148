package wasm

import (
	"bytes"
	"context"
	"errors"
	"github.com/huskrt/husk/test/testclient"
	"io"
	"slices"
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
	"github.com/creack/pty"
)

// These tests drive Wasm tasks with containerd's Go client, as the CRI
// does: exec, signals, TTY, stats, OOM.

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

type started struct {
	task   containerd.Task
	exit   <-chan containerd.ExitStatus
	stdout *testclient.SyncBuffer
	stderr *testclient.SyncBuffer
}

// startWasm creates and starts a husk task from the suite image.
func startWasm(t *testing.T, id string, args []string, opts ...oci.SpecOpts) started {
	t.Helper()
	return startImage(t, suiteRef, id, args, opts...)
}

// startImage creates and starts a husk task from image ref, recorded as
// the container's image (as ctr run and the CRI do).
func startImage(t *testing.T, ref, id string, args []string, opts ...oci.SpecOpts) started {
	t.Helper()
	cl, ctx := newClient(t)
	img, err := cl.GetImage(ctx, ref)
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs(args...)}, opts...)
	c, err := cl.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id+"-snap", img),
		containerd.WithNewSpec(specOpts...),
		containerd.WithRuntime(husk, nil))
	if err != nil {
		t.Fatalf("new container: %v", err)
	}
	out, errOut := &testclient.SyncBuffer{}, &testclient.SyncBuffer{}
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, errOut)))
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
	return started{task: task, exit: exit, stdout: out, stderr: errOut}
}

func waitExit(t *testing.T, s started, within time.Duration) uint32 {
	t.Helper()
	select {
	case st := <-s.exit:
		return st.ExitCode()
	case <-time.After(within):
		t.Fatalf("task did not exit within %v; stdout %q stderr %q", within, s.stdout, s.stderr)
	}
	return 0
}

// waitOutput waits until the task's stdout contains want.
func waitOutput(t *testing.T, s started, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout %q never showed %q (stderr %q)", s.stdout, want, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSignals: the runner, PID 1 of its container, ends a module on
// SIGTERM, SIGINT and SIGHUP with 128+n, and SIGKILL works on a module that
// never returns to the host (R4's "loops forever").
func TestSignals(t *testing.T) {
	for _, tt := range []struct {
		module string
		sig    syscall.Signal
	}{
		{"/bin/spin.wasm", syscall.SIGTERM},
		{"/bin/spin.wasm", syscall.SIGINT},
		{"/bin/spin.wasm", syscall.SIGHUP},
		{"/bin/spin.wasm", syscall.SIGKILL},
		{"/bin/conform.wasm", syscall.SIGTERM},
	} {
		t.Run(tt.module+"/"+tt.sig.String(), func(t *testing.T) {
			_, ctx := newClient(t)
			s := startWasm(t, name(t, ""), []string{tt.module, "loop"})
			if tt.module == "/bin/conform.wasm" {
				waitOutput(t, s, "looping")
			} else {
				time.Sleep(200 * time.Millisecond)
			}
			if err := s.task.Kill(ctx, tt.sig); err != nil {
				t.Fatalf("kill: %v", err)
			}
			if code := waitExit(t, s, 10*time.Second); code != 128+uint32(tt.sig) {
				t.Fatalf("exit %d after %v, want %d", code, tt.sig, 128+int(tt.sig))
			}
		})
	}
}

// TestExec: exec runs another module, another export of one (path#func)
// and a native program in a running Wasm container; Pids lists them, and
// an exec's stdin can be closed.
func TestExec(t *testing.T) {
	_, ctx := newClient(t)
	s := startWasm(t, name(t, ""), []string{"/bin/conform.wasm", "loop"})
	waitOutput(t, s, "looping")
	spec, err := s.task.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := func(id string, args []string, stdin string) (string, uint32) {
		t.Helper()
		ps := *spec.Process
		ps.Args = args
		ps.Terminal = false
		var out testclient.SyncBuffer
		var in io.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		p, err := s.task.Exec(ctx, id, &ps, cio.NewCreator(cio.WithStreams(in, &out, &out)))
		if err != nil {
			t.Fatalf("exec %s: %v", id, err)
		}
		defer p.Delete(ctx)
		ch, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatalf("start exec %s: %v", id, err)
		}
		if stdin != "" {
			if err := p.CloseIO(ctx, containerd.WithStdinCloser); err != nil {
				t.Fatalf("close io: %v", err)
			}
		}
		select {
		case st := <-ch:
			// The output copier may still be draining.
			time.Sleep(100 * time.Millisecond)
			return out.String(), st.ExitCode()
		case <-time.After(30 * time.Second):
			t.Fatalf("exec %s did not exit", id)
		}
		return "", 0
	}
	if out, code := run("other-export", []string{"/bin/multi.wasm#other"}, ""); out != "other\n" || code != 0 {
		t.Errorf("exec multi.wasm#other: %q, exit %d", out, code)
	}
	if out, code := run("other-module", []string{"conform.wasm", "args", "x"}, ""); out != "[conform.wasm]\n[args]\n[x]\n" || code != 0 {
		t.Errorf("exec conform.wasm args x: %q, exit %d", out, code)
	}
	if out, code := run("stdin", []string{"conform.wasm", "stdin"}, "abc\n"); out != "ABC\nlines 1\n" || code != 0 {
		t.Errorf("exec conform.wasm stdin: %q, exit %d", out, code)
	}
	if out, code := run("exit", []string{"conform.wasm", "exit", "7"}, ""); code != 7 {
		t.Errorf("exec conform.wasm exit 7: %q, exit %d", out, code)
	}
	if out, code := run("native", []string{"/bin/echo", "native"}, ""); out != "native\n" || code != 0 {
		t.Errorf("exec /bin/echo native: %q, exit %d", out, code)
	}

	// A running exec shows in Pids with its exec id.
	ps := *spec.Process
	ps.Args = []string{"/bin/spin.wasm"}
	p, err := s.task.Exec(ctx, "spinner", &ps, cio.NewCreator())
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := p.Wait(ctx)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	infos, err := s.task.Pids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pids []uint32
	for _, pi := range infos {
		pids = append(pids, pi.Pid)
	}
	if !slices.Contains(pids, s.task.Pid()) || !slices.Contains(pids, p.Pid()) {
		t.Errorf("pids %v, want the init %d and the exec %d", pids, s.task.Pid(), p.Pid())
	}
	if err := p.Kill(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := <-ch; st.ExitCode() != 143 {
		t.Errorf("exec killed by SIGTERM: exit %d, want 143", st.ExitCode())
	}
	p.Delete(ctx)
}

// TestLimits: the OCI memory limit is the container's cgroup limit (Stats
// reports it) and the module's: a memory bomb ends with a clean trap or an
// OOM kill, either way non-zero, and the shim serves on. An OOM kill (exit
// 137) has its TaskOOM event, published before the TaskExit.
func TestLimits(t *testing.T) {
	const limit = 96 << 20
	for _, bomb := range [][]string{{"/bin/grow.wasm"}, {"/bin/conform.wasm", "grow"}} {
		t.Run(bomb[0], func(t *testing.T) {
			cl, ctx := newClient(t)
			id := name(t, "")
			events, errs := cl.Subscribe(ctx, `topic=="/tasks/oom"`, `topic=="/tasks/exit"`)
			s := startWasm(t, id, bomb, oci.WithMemoryLimit(limit))
			code := waitExit(t, s, 60*time.Second)
			// The shim publishes the init's TaskExit after the TaskOOM of
			// any kill before it: read up to the TaskExit.
			oom, exited := false, false
			timeout := time.After(10 * time.Second)
			for !exited {
				select {
				case e := <-events:
					v, err := typeurl.UnmarshalAny(e.Event)
					if err != nil {
						continue
					}
					switch ev := v.(type) {
					case *eventstypes.TaskOOM:
						oom = oom || ev.ContainerID == id
					case *eventstypes.TaskExit:
						exited = ev.ContainerID == id && ev.ID == id
					}
				case err := <-errs:
					t.Fatalf("events: %v", err)
				case <-timeout:
					t.Fatalf("no TaskExit event within 10s of the exit (OOM event %v)", oom)
				}
			}
			trapped := strings.Contains(s.stderr.String(), "husk-wasm-runner") || strings.Contains(s.stdout.String(), "out of memory") || strings.Contains(s.stderr.String(), "out of memory")
			t.Logf("exit %d, OOM event %v, stderr %q", code, oom, tail(s.stderr.String()))
			if code == 0 || (!oom && !trapped) || (code == 137 && !oom) {
				t.Fatalf("memory bomb: exit %d, OOM event before TaskExit %v, stderr %q: want non-zero and an OOM event or a clean failure", code, oom, s.stderr)
			}
		})
	}
	t.Run("stats", func(t *testing.T) {
		_, ctx := newClient(t)
		s := startWasm(t, name(t, ""), []string{"/bin/conform.wasm", "loop"}, oci.WithMemoryLimit(limit))
		waitOutput(t, s, "looping")
		m, err := s.task.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, err := typeurl.UnmarshalAny(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		switch st := v.(type) {
		case *v1stats.Metrics:
			got = st.Memory.Usage.Limit
		case *v2stats.Metrics:
			got = st.Memory.UsageLimit
		default:
			t.Fatalf("metrics of type %T", v)
		}
		if got != limit {
			t.Fatalf("cgroup memory limit %d, want %d", got, limit)
		}
	})
}

func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

// TestTTY: `ctr run -t` gives a module a terminal: its output comes back
// through the pty (runwasi has no TTY).
func TestTTY(t *testing.T) {
	b := needBench(t)
	cmd := b.CtrCmd(testCtx(t), "run", "--rm", "-t", "--runtime", husk, suiteRef, name(t, ""), "/bin/conform.wasm", "args", "tty")
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break // EIO once ctr and the pty's other side are gone
		}
	}
	if err := cmd.Wait(); err != nil {
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Fatalf("ctr run -t: exit %d, output %q", ee.ExitCode(), out.String())
	}
	// A terminal turns \n into \r\n (each of the two terminals, the
	// container's and ctr's, may).
	if got := out.String(); !strings.Contains(got, "\r\n") || !strings.Contains(strings.ReplaceAll(got, "\r", ""), "[args]\n[tty]\n") {
		t.Fatalf("output through the tty %q", got)
	}
}
