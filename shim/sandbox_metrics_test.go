package shim

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/huskrt/husk/runtime/handler"
)

// TestSandboxCollector: what sandboxes measure is exported with the
// sandbox's id and its own labels, counters as counters.
func TestSandboxCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(sandboxCollector{measure: func(context.Context) map[string][]handler.Measure {
		return map[string][]handler.Measure{"pod": {
			{Name: "vm_exits_total", Help: "exits", Counter: true, Labels: map[string]string{"reason": "io"}, Value: 7},
			{Name: "vm_memory_bytes", Help: "memory", Value: 256 << 20},
		}}
	}})
	want := `
# HELP husk_vm_exits_total exits
# TYPE husk_vm_exits_total counter
husk_vm_exits_total{reason="io",sandbox="pod"} 7
# HELP husk_vm_memory_bytes memory
# TYPE husk_vm_memory_bytes gauge
husk_vm_memory_bytes{sandbox="pod"} 2.68435456e+08
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
