package shim

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/huskrt/husk/runtime/handler"
)

// measureTimeout bounds a scrape's questions to the sandboxes (a VM's
// process answers over its control channel).
const measureTimeout = 2 * time.Second

// sandboxCollector exports what sandboxes measure of themselves (a VM's
// exits, memory, disks: handler.Measured) as husk_<name>{sandbox=...}.
// Which metrics exist depends on the sandboxes, so it describes none
// (an unchecked collector).
type sandboxCollector struct {
	measure func(context.Context) map[string][]handler.Measure
}

func (sandboxCollector) Describe(chan<- *prometheus.Desc) {}

func (c sandboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
	defer cancel()
	for sandbox, ms := range c.measure(ctx) {
		for _, m := range ms {
			keys := slices.Sorted(maps.Keys(m.Labels))
			values := make([]string, 0, len(keys)+1)
			for _, k := range keys {
				values = append(values, m.Labels[k])
			}
			desc := prometheus.NewDesc("husk_"+m.Name, m.Help, append(keys, "sandbox"), nil)
			kind := prometheus.GaugeValue
			if m.Counter {
				kind = prometheus.CounterValue
			}
			metric, err := prometheus.NewConstMetric(desc, kind, m.Value, append(values, sandbox)...)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(desc, err)
				continue
			}
			ch <- metric
		}
	}
}
