package shim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
)

// ManagementSocket is the name of the shim's management socket in its
// sandbox's state directory: Prometheus metrics at /metrics, pprof under
// /debug/pprof/. Only root can reach it (0600 in a 0700 directory).
const ManagementSocket = "shim.sock"

// metrics are the shim's own metrics, served in Prometheus' text format
// (metrics_text.go; docs/RATIONALE.md, "Why the shim writes its metrics
// itself").
type metrics struct {
	tasks   gauge
	creates counterVec // by result: ok, error
	execs   counter
	exits   counter
	ooms    counter
	// hookCalls and hookSeconds follow every hook module call.
	hookCalls   counterVec   // by hook, point, result
	hookSeconds histogramVec // by hook, point
	// sandboxes asks the sandboxes what they measure of themselves
	// (sandbox_metrics.go); nil: nothing.
	sandboxes func(context.Context) map[string][]handler.Measure

	mu        sync.Mutex
	server    *http.Server            // guarded by mu; nil until the first sandbox
	listeners map[string]net.Listener // by sandbox state directory; guarded by mu
}

func newMetrics() *metrics {
	return &metrics{
		creates:   counterVec{labels: []string{"result"}},
		hookCalls: counterVec{labels: []string{"hook", "point", "result"}},
		// 5 µs to ~80 ms: a call is microseconds, a deadline hit is not.
		hookSeconds: histogramVec{labels: []string{"hook", "point"}, buckets: exponentialBuckets(5e-6, 4, 8)},
	}
}

// write writes every metric in Prometheus' text exposition format: the
// shim's, the sandboxes', then the Go runtime's and the process's.
func (m *metrics) write(ctx context.Context, w io.Writer) error {
	e := &expo{w: bufio.NewWriter(w)}
	e.family("husk_tasks", "Tasks (containers) this shim serves.", "gauge")
	e.sample("husk_tasks", nil, nil, float64(m.tasks.get()))
	e.family("husk_task_creates_total", "Task create requests, by result.", "counter")
	m.creates.write(e, "husk_task_creates_total")
	e.family("husk_execs_total", "Exec processes added.", "counter")
	e.sample("husk_execs_total", nil, nil, float64(m.execs.get()))
	e.family("husk_process_exits_total", "Processes (inits and execs) that exited.", "counter")
	e.sample("husk_process_exits_total", nil, nil, float64(m.exits.get()))
	e.family("husk_oom_kills_total", "OOM kills reported in this shim's containers.", "counter")
	e.sample("husk_oom_kills_total", nil, nil, float64(m.ooms.get()))
	e.family("husk_hook_calls_total", "Hook module calls, by hook, point and result (allow, deny, patch, error).", "counter")
	m.hookCalls.write(e, "husk_hook_calls_total")
	e.family("husk_hook_call_seconds", "Time of one hook module call.", "histogram")
	m.hookSeconds.write(e, "husk_hook_call_seconds")
	if m.sandboxes != nil {
		mctx, cancel := context.WithTimeout(ctx, measureTimeout)
		writeSandboxMetrics(e, m.sandboxes(mctx))
		cancel()
	}
	writeGoMetrics(e)
	writeProcessMetrics(e)
	return e.flush()
}

// observeHook records one hook call.
func (m *metrics) observeHook(c hooks.Call) {
	m.hookCalls.with(c.Hook, string(c.Point), string(c.Result)).inc()
	m.hookSeconds.with(c.Hook, string(c.Point)).observe(c.Duration.Seconds())
}

// serveMetrics answers /metrics.
func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := m.write(r.Context(), &buf); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// serve makes the management server answer on dir/ManagementSocket too:
// every sandbox of the shim (a pod is one; each container of an
// io.husk.group is its own) has the shim's socket in its state directory.
func (m *metrics) serve(ctx context.Context, dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.listeners[dir]; ok {
		return nil
	}
	path := filepath.Join(dir, ManagementSocket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_ = os.Remove(path) // a stale socket of a dead shim
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("management socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	if m.server == nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", m.serveMetrics)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		m.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		m.listeners = make(map[string]net.Listener)
	}
	m.listeners[dir] = l
	srv := m.server
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			logging.L(ctx).Error("management server", "error", err)
		}
	}()
	return nil
}

// unserve closes the management socket of a sandbox that is gone.
func (m *metrics) unserve(dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.listeners[dir]; ok {
		l.Close() // unlinks the socket
		delete(m.listeners, dir)
	}
}

// close stops the management server and removes its sockets.
func (m *metrics) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.server == nil {
		return nil
	}
	err := m.server.Close() // closes the listeners, which unlinks the sockets
	m.server, m.listeners = nil, nil
	return err
}
