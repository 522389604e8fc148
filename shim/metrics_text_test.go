package shim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/handler"
)

// TestMetricsText: the shim's metrics as /metrics serves them, in the text
// format: counters by label values, the hook histogram's cumulative
// buckets, sum and count, the sandboxes' metrics, and the Go runtime's and
// the process's under the names Prometheus' clients give them.
func TestMetricsText(t *testing.T) {
	m := newMetrics()
	m.tasks.inc()
	m.tasks.inc()
	m.tasks.dec()
	m.creates.with("ok").inc()
	m.creates.with("ok").inc()
	m.creates.with("error").inc()
	m.execs.inc()
	m.observeHook(hooks.Call{Hook: `a"b`, Point: "container.create", Result: hooks.ResultAllow, Duration: 3 * time.Microsecond})
	m.observeHook(hooks.Call{Hook: `a"b`, Point: "container.create", Result: hooks.ResultDeny, Duration: 100 * time.Microsecond})
	m.observeHook(hooks.Call{Hook: `a"b`, Point: "container.create", Result: hooks.ResultAllow, Duration: time.Second})
	m.sandboxes = func(context.Context) map[string][]handler.Measure {
		return map[string][]handler.Measure{"pod": {{Name: "vm_memory_bytes", Help: "memory", Value: 42}}}
	}
	rec := httptest.NewRecorder()
	m.serveMetrics(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	got := rec.Body.String()
	for _, want := range []string{
		"# HELP husk_tasks Tasks (containers) this shim serves.\n# TYPE husk_tasks gauge\nhusk_tasks 1\n",
		"# TYPE husk_task_creates_total counter\nhusk_task_creates_total{result=\"error\"} 1\nhusk_task_creates_total{result=\"ok\"} 2\n",
		"husk_execs_total 1\n",
		"husk_process_exits_total 0\n",
		"husk_oom_kills_total 0\n",
		`husk_hook_calls_total{hook="a\"b",point="container.create",result="allow"} 2` + "\n" +
			`husk_hook_calls_total{hook="a\"b",point="container.create",result="deny"} 1` + "\n",
		"# TYPE husk_hook_call_seconds histogram\n" +
			`husk_hook_call_seconds_bucket{hook="a\"b",point="container.create",le="5e-06"} 1` + "\n" +
			`husk_hook_call_seconds_bucket{hook="a\"b",point="container.create",le="2e-05"} 1` + "\n" +
			`husk_hook_call_seconds_bucket{hook="a\"b",point="container.create",le="8e-05"} 1` + "\n" +
			`husk_hook_call_seconds_bucket{hook="a\"b",point="container.create",le="0.00032"} 2` + "\n",
		`husk_hook_call_seconds_bucket{hook="a\"b",point="container.create",le="0.08192"} 2` + "\n" +
			`husk_hook_call_seconds_bucket{hook="a\"b",point="container.create",le="+Inf"} 3` + "\n" +
			`husk_hook_call_seconds_sum{hook="a\"b",point="container.create"} 1.000103` + "\n" +
			`husk_hook_call_seconds_count{hook="a\"b",point="container.create"} 3` + "\n",
		"# TYPE husk_vm_memory_bytes gauge\nhusk_vm_memory_bytes{sandbox=\"pod\"} 42\n",
		"# TYPE go_goroutines gauge\ngo_goroutines ",
		"go_info{version=\"go",
		"# TYPE process_cpu_seconds_total counter\n",
		"# TYPE process_open_fds gauge\nprocess_open_fds ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the metrics lack\n%s\nin\n%s", want, got)
		}
	}
	// Values that must be positive, as the process and runtime are.
	for _, name := range []string{"go_goroutines", "go_threads", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"} {
		v := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(got)
		if v == nil {
			t.Errorf("no %s", name)
			continue
		}
		if f, err := strconv.ParseFloat(v[1], 64); err != nil || f <= 0 {
			t.Errorf("%s = %s", name, v[1])
		}
	}
	// Every line is a comment or a sample: name, optional labels, value.
	line := regexp.MustCompile(`^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? \S+)$`)
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("not a line of the text format: %q", l)
		}
	}
}

// TestMetricsCountConcurrently: counters and histograms count every
// increment from many goroutines (go test -race sees them too).
func TestMetricsCountConcurrently(t *testing.T) {
	m := newMetrics()
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				m.execs.inc()
				m.creates.with("ok").inc()
				m.hookSeconds.with("h", "p").observe(1e-6)
			}
		}()
	}
	for range 8 {
		<-done
	}
	var b strings.Builder
	if err := m.write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"husk_execs_total 8000\n", `husk_task_creates_total{result="ok"} 8000` + "\n", `husk_hook_call_seconds_count{hook="h",point="p"} 8000` + "\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the metrics lack %q", want)
		}
	}
}
