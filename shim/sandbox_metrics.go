package shim

import (
	"maps"
	"slices"
	"time"

	"github.com/huskrt/husk/runtime/handler"
)

// measureTimeout bounds a scrape's questions to the sandboxes (a VM's
// process answers over its control channel).
const measureTimeout = 2 * time.Second

// writeSandboxMetrics exports what sandboxes measure of themselves (a VM's
// exits, memory, disks: handler.Measured) as husk_<name>{sandbox=...},
// counters as counters, one family per name. Which metrics exist depends
// on the sandboxes. A sample whose name or label names the format does not
// allow, or whose name an earlier sample gave another kind or labels, is
// left out (a sandbox's answer is not trusted to be well formed).
func writeSandboxMetrics(e *expo, bySandbox map[string][]handler.Measure) {
	type series struct {
		labels, values []string
		value          float64
	}
	type family struct {
		help    string
		counter bool
		labels  string // the label names, joined: all series must agree
		series  []series
	}
	families := map[string]*family{}
	for _, sandbox := range slices.Sorted(maps.Keys(bySandbox)) {
		for _, m := range bySandbox[sandbox] {
			name := "husk_" + m.Name
			if !validName(name, true) {
				continue
			}
			keys := slices.Sorted(maps.Keys(m.Labels))
			ok := true
			values := make([]string, 0, len(keys)+1)
			for _, k := range keys {
				ok = ok && validName(k, false) && k != "sandbox" && k[0] != '_'
				values = append(values, m.Labels[k])
			}
			if !ok {
				continue
			}
			labels := append(keys, "sandbox")
			f, seen := families[name]
			if !seen {
				f = &family{help: m.Help, counter: m.Counter, labels: seriesKey(labels)}
				families[name] = f
			}
			if f.counter != m.Counter || f.labels != seriesKey(labels) {
				continue
			}
			f.series = append(f.series, series{labels: labels, values: append(values, sandbox), value: m.Value})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(families)) {
		f := families[name]
		typ := "gauge"
		if f.counter {
			typ = "counter"
		}
		e.family(name, f.help, typ)
		slices.SortFunc(f.series, func(a, b series) int { return slices.Compare(a.values, b.values) })
		for _, s := range f.series {
			e.sample(name, s.labels, s.values, s.value)
		}
	}
}
