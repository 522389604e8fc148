package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/logging"
)

// ManagementSocket is the name of the shim's management socket in its
// sandbox's state directory: Prometheus metrics at /metrics, pprof under
// /debug/pprof/. Only root can reach it (0600 in a 0700 directory).
const ManagementSocket = "shim.sock"

// metrics are the shim's own Prometheus metrics, in a registry of its own
// (no package globals).
type metrics struct {
	reg     *prometheus.Registry
	tasks   prometheus.Gauge
	creates *prometheus.CounterVec // by result: ok, error
	execs   prometheus.Counter
	exits   prometheus.Counter
	ooms    prometheus.Counter
	// hookCalls and hookSeconds follow every hook module call.
	hookCalls   *prometheus.CounterVec   // by hook, point, result
	hookSeconds *prometheus.HistogramVec // by hook, point

	mu        sync.Mutex
	server    *http.Server            // guarded by mu; nil until the first sandbox
	listeners map[string]net.Listener // by sandbox state directory; guarded by mu
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "husk_tasks", Help: "Tasks (containers) this shim serves."}),
		creates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "husk_task_creates_total", Help: "Task create requests, by result."}, []string{"result"}),
		execs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "husk_execs_total", Help: "Exec processes added."}),
		exits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "husk_process_exits_total", Help: "Processes (inits and execs) that exited."}),
		ooms: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "husk_oom_kills_total", Help: "OOM kills reported in this shim's containers."}),
		hookCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "husk_hook_calls_total", Help: "Hook module calls, by hook, point and result (allow, deny, patch, error)."},
			[]string{"hook", "point", "result"}),
		hookSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "husk_hook_call_seconds", Help: "Time of one hook module call.",
			// 5 µs to ~80 ms: a call is microseconds, a deadline hit is not.
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 8)},
			[]string{"hook", "point"}),
	}
	m.reg.MustRegister(m.tasks, m.creates, m.execs, m.exits, m.ooms, m.hookCalls, m.hookSeconds,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeHook records one hook call.
func (m *metrics) observeHook(c hooks.Call) {
	m.hookCalls.WithLabelValues(c.Hook, string(c.Point), string(c.Result)).Inc()
	m.hookSeconds.WithLabelValues(c.Hook, string(c.Point)).Observe(c.Duration.Seconds())
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
		mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
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
