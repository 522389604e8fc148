package shim

import (
	"bufio"
	"strings"
	"testing"

	"github.com/huskrt/husk/runtime/handler"
)

// TestSandboxMetrics: what sandboxes measure is exported with the
// sandbox's id and its own labels, counters as counters, one family per
// name with the sandboxes' series together; names the format does not
// allow, a label called sandbox, and a series that disagrees with its
// family's kind or labels are left out.
func TestSandboxMetrics(t *testing.T) {
	var b strings.Builder
	e := &expo{w: bufio.NewWriter(&b)}
	writeSandboxMetrics(e, map[string][]handler.Measure{
		"pod": {
			{Name: "vm_exits_total", Help: "exits", Counter: true, Labels: map[string]string{"reason": "io"}, Value: 7},
			{Name: "vm_memory_bytes", Help: "memory", Value: 256 << 20},
			{Name: "bad name", Help: "x", Value: 1},
			{Name: "vm_x", Help: "x", Labels: map[string]string{"bad-label": "v"}, Value: 1},
			{Name: "vm_y", Help: "x", Labels: map[string]string{"sandbox": "other"}, Value: 1},
		},
		"another": {
			{Name: "vm_exits_total", Help: "exits", Counter: true, Labels: map[string]string{"reason": "mmio\n\"x\""}, Value: 2},
			{Name: "vm_memory_bytes", Help: "memory", Counter: true, Value: 1}, // not a gauge: left out
			{Name: "vm_memory_bytes", Help: "memory", Labels: map[string]string{"extra": "1"}, Value: 1},
		},
	})
	if err := e.flush(); err != nil {
		t.Fatal(err)
	}
	want := `# HELP husk_vm_exits_total exits
# TYPE husk_vm_exits_total counter
husk_vm_exits_total{reason="io",sandbox="pod"} 7
husk_vm_exits_total{reason="mmio\n\"x\"",sandbox="another"} 2
# HELP husk_vm_memory_bytes memory
# TYPE husk_vm_memory_bytes counter
husk_vm_memory_bytes{sandbox="another"} 1
`
	// Series sort by their label values. Sandboxes are read in order of
	// their ids: "another" comes first, its counter makes the family a
	// counter, and pod's gauge of the same name is the one left out.
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
