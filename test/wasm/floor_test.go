package wasm

import (
	"fmt"
	"strings"
	"testing"
)

// TestMemoryFloor: a memory limit under what the runtime needs to load a
// module is refused at create, saying so, where the OOM killer ended the
// container with status 137 and no word (a Go module under 24 MiB, #13
// item 7); above it the module runs; and the floor is the module's (a
// small WAT module runs in 8 MiB).
func TestMemoryFloor(t *testing.T) {
	needBench(t)
	mem := func(mib int) []string { return []string{"--memory-limit", fmt.Sprint(mib << 20)} }

	r := ctrRun(t, "", mem(12), "/bin/conform.wasm", "args", "x")
	if r.code == 0 || r.code == 137 {
		t.Fatalf("a Go module under 12 MiB: exit %d, stderr %q; want create refused", r.code, r.stderr)
	}
	for _, w := range []string{"memory limit 12.0 MiB is below what the Wasm runtime needs to load this module", "compiled code", "invalid argument"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("ctr's error lacks %q:\n%s", w, r.stderr)
		}
	}

	if r := ctrRun(t, "", mem(40), "/bin/conform.wasm", "args", "x"); r.code != 0 || !strings.Contains(r.stdout, "x") {
		t.Errorf("a Go module under 40 MiB: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := ctrRun(t, "", mem(8), "/bin/hello.wasm"); r.code != 0 || r.stdout == "" {
		t.Errorf("a WAT module under 8 MiB: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Where a Go module's floor lies, for the record (docs/limitations.md).
	for _, m := range []int{20, 24, 28} {
		r := ctrRun(t, "", mem(m), "/bin/conform.wasm", "args", "x")
		t.Logf("Go module (conform) under %d MiB: exit %d %s", m, r.code, strings.TrimSpace(r.stderr))
	}
}
