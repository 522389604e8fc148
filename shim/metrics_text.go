package shim

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// The shim's metrics in Prometheus' text exposition format (version
// 0.0.4), written by hand: the few counters, gauges and one histogram the
// shim keeps, what sandboxes measure, and a subset of the Go runtime's and
// the process's metrics under the names Prometheus' Go client gives them.
// docs/RATIONALE.md, "Why the shim writes its metrics itself", says why.

// counter counts up.
type counter struct{ v atomic.Uint64 }

func (c *counter) inc()        { c.v.Add(1) }
func (c *counter) get() uint64 { return c.v.Load() }

// gauge goes up and down.
type gauge struct{ v atomic.Int64 }

func (g *gauge) inc()       { g.v.Add(1) }
func (g *gauge) dec()       { g.v.Add(-1) }
func (g *gauge) get() int64 { return g.v.Load() }

// counterVec is counters by label values.
type counterVec struct {
	labels []string
	series[*counter]
}

// series is a vector's metrics by label values, each made at its first use.
type series[T any] struct {
	mu sync.Mutex
	by map[string]*labeled[T] // by joined label values; guarded by mu
}

// get returns the metric of the label values, made by fresh the first time.
func (s *series[T]) get(values []string, fresh func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := seriesKey(values)
	if l, ok := s.by[k]; ok {
		return l.m
	}
	if s.by == nil {
		s.by = map[string]*labeled[T]{}
	}
	l := &labeled[T]{values: slices.Clone(values), m: fresh()}
	s.by[k] = l
	return l.m
}

// each calls f with every series, in the order of their label values,
// under the vector's lock.
func (s *series[T]) each(f func(values []string, m T)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range sortedKeys(s.by) {
		f(s.by[k].values, s.by[k].m)
	}
}

// labeled is one series of a vector: its label values and its metric.
type labeled[T any] struct {
	values []string
	m      T
}

// seriesKey joins label values unambiguously (a value may hold anything
// but NUL is as good a separator as any: Prometheus' own clients use it).
func seriesKey(values []string) string { return strings.Join(values, "\x00") }

// with returns the counter of the label values, made at first use.
func (v *counterVec) with(values ...string) *counter {
	return v.get(values, func() *counter { return &counter{} })
}

func (v *counterVec) write(e *expo, name string) {
	v.each(func(values []string, c *counter) {
		e.sample(name, v.labels, values, float64(c.get()))
	})
}

// histogram counts observations into buckets (upper bounds, ascending;
// +Inf implied).
type histogram struct {
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bound, not cumulative; guarded by mu
	inf    uint64   // above the last bound; guarded by mu
	sum    float64  // guarded by mu
}

// histogramVec is histograms by label values, all with the same buckets.
type histogramVec struct {
	labels  []string
	buckets []float64
	series[*histogram]
}

func (v *histogramVec) with(values ...string) *histogram {
	return v.get(values, func() *histogram {
		return &histogram{bounds: v.buckets, counts: make([]uint64, len(v.buckets))}
	})
}

// observe adds x to the first bucket whose bound is at least x.
func (h *histogram) observe(x float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sum += x
	for i, b := range h.bounds {
		if x <= b {
			h.counts[i]++
			return
		}
	}
	h.inf++
}

func (v *histogramVec) write(e *expo, name string) {
	labels := append(slices.Clone(v.labels), "le")
	v.each(func(values []string, h *histogram) {
		h.mu.Lock()
		defer h.mu.Unlock()
		var cum uint64
		for i, c := range h.counts {
			cum += c
			e.sample(name+"_bucket", labels, append(slices.Clone(values), formatFloat(v.buckets[i])), float64(cum))
		}
		cum += h.inf
		e.sample(name+"_bucket", labels, append(slices.Clone(values), "+Inf"), float64(cum))
		e.sample(name+"_sum", v.labels, values, h.sum)
		e.sample(name+"_count", v.labels, values, float64(cum))
	})
}

// exponentialBuckets returns n bounds, start, start·factor, ...
func exponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

func sortedKeys[T any](m map[string]T) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// expo writes the exposition format; the first write error sticks.
type expo struct {
	w   *bufio.Writer
	err error
}

func (e *expo) printf(parts ...string) {
	for _, p := range parts {
		if e.err != nil {
			return
		}
		_, e.err = e.w.WriteString(p)
	}
}

func (e *expo) flush() error {
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

// family writes a metric family's HELP and TYPE lines.
func (e *expo) family(name, help, typ string) {
	e.printf("# HELP ", name, " ", escapeHelp(help), "\n# TYPE ", name, " ", typ, "\n")
}

// sample writes one sample line; labels and values pair up.
func (e *expo) sample(name string, labels, values []string, v float64) {
	e.printf(name)
	if len(labels) > 0 {
		e.printf("{")
		for i, l := range labels {
			if i > 0 {
				e.printf(",")
			}
			e.printf(l, `="`, escapeLabel(values[i]), `"`)
		}
		e.printf("}")
	}
	e.printf(" ", formatFloat(v), "\n")
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// validName reports whether s is a metric name (label names: without
// colons), as the exposition format allows them.
func validName(s string, colons bool) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
		case r == ':' && colons:
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// writeGoMetrics writes the Go runtime's metrics that Prometheus' Go
// collector names go_*: goroutines, threads, version and the memory
// statistics.
func writeGoMetrics(e *expo) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gaugeLine := func(name, help string, v float64) {
		e.family(name, help, "gauge")
		e.sample(name, nil, nil, v)
	}
	counterLine := func(name, help string, v float64) {
		e.family(name, help, "counter")
		e.sample(name, nil, nil, v)
	}
	gaugeLine("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	gaugeLine("go_threads", "Number of OS threads created.", float64(pprof.Lookup("threadcreate").Count()))
	e.family("go_info", "Information about the Go environment.", "gauge")
	e.sample("go_info", []string{"version"}, []string{runtime.Version()}, 1)
	gaugeLine("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", float64(ms.Alloc))
	counterLine("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", float64(ms.TotalAlloc))
	counterLine("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed.", float64(ms.Mallocs))
	counterLine("go_memstats_frees_total", "Total number of heap objects frees.", float64(ms.Frees))
	gaugeLine("go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys))
	gaugeLine("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", float64(ms.HeapAlloc))
	gaugeLine("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", float64(ms.HeapSys))
	gaugeLine("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", float64(ms.HeapIdle))
	gaugeLine("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse))
	gaugeLine("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", float64(ms.HeapReleased))
	gaugeLine("go_memstats_heap_objects", "Number of currently allocated objects.", float64(ms.HeapObjects))
	gaugeLine("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator.", float64(ms.StackInuse))
	gaugeLine("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", float64(ms.NextGC))
	gaugeLine("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", float64(ms.LastGC)/1e9)
	counterLine("go_gc_cycles_total", "Count of completed GC cycles.", float64(ms.NumGC))
}

// writeProcessMetrics writes what Prometheus' process collector names
// process_*, from /proc/self; a value that cannot be read is left out.
func writeProcessMetrics(e *expo) {
	gaugeLine := func(name, help string, v float64) {
		e.family(name, help, "gauge")
		e.sample(name, nil, nil, v)
	}
	const ticks = 100 // USER_HZ, 100 on every Linux Go runs on
	if st, ok := readProcStat(); ok {
		e.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter")
		e.sample("process_cpu_seconds_total", nil, nil, float64(st.utime+st.stime)/ticks)
		gaugeLine("process_virtual_memory_bytes", "Virtual memory size in bytes.", float64(st.vsize))
		gaugeLine("process_resident_memory_bytes", "Resident memory size in bytes.", float64(st.rss*int64(os.Getpagesize())))
		if boot, ok := bootTime(); ok {
			gaugeLine("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", float64(boot)+float64(st.start)/ticks)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		gaugeLine("process_open_fds", "Number of open file descriptors.", float64(len(fds)))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		gaugeLine("process_max_fds", "Maximum number of open file descriptors.", float64(rl.Cur))
	}
}

type procStat struct {
	utime, stime, start uint64
	vsize               uint64
	rss                 int64
}

// readProcStat reads /proc/self/stat: after the command's closing
// parenthesis, field 3 (state) onwards.
func readProcStat() (procStat, bool) {
	var st procStat
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return st, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24.
	if len(f) < 22 {
		return st, false
	}
	var errs [5]error
	st.utime, errs[0] = strconv.ParseUint(f[11], 10, 64)
	st.stime, errs[1] = strconv.ParseUint(f[12], 10, 64)
	st.start, errs[2] = strconv.ParseUint(f[19], 10, 64)
	st.vsize, errs[3] = strconv.ParseUint(f[20], 10, 64)
	st.rss, errs[4] = strconv.ParseInt(f[21], 10, 64)
	for _, err := range errs {
		if err != nil {
			return st, false
		}
	}
	return st, true
}

// bootTime is /proc/stat's btime, the boot's time in seconds since 1970.
func bootTime() (uint64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
