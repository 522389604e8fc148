package main

import (
	"strings"
	"testing"

	"github.com/huskrt/husk/test/nested"
)

// verdicts returns each row's verdict by id and the start of its what
// (the first row of an id and what wins).
func verdictOf(t *testing.T, rows []targetRow, id, what string) targetRow {
	t.Helper()
	for _, r := range rows {
		if r.ID == id && strings.Contains(r.What, what) {
			return r
		}
	}
	t.Fatalf("no row %s %q in %+v", id, what, rows)
	return targetRow{}
}

func TestTargetVerdicts(t *testing.T) {
	good := result{
		P1: map[string]stats{"husk": {Median: 70}, "runc": {Median: 100}},
		Density: map[string]densityInfo{
			"husk": {Shim1: memInfo{RSSKiB: 10000}, Shim10: memInfo{RSSKiB: 10000 + 9*512}, Pods10: memInfo{RSSKiB: 15000, PSSKiB: 5000}},
			"runc": {Shim1: memInfo{RSSKiB: 17000}, Shim10: memInfo{RSSKiB: 17000 + 9*2048}, Pods10: memInfo{RSSKiB: 17000, PSSKiB: 6000}},
		},
		Wasm: &wasmResult{
			P3:  map[string]stats{"husk wasm tiny hello": {Median: 50}, "runc busybox echo": {Median: 84}, "runc wazero CLI tiny hello": {Median: 90}},
			P4:  map[string]float64{"husk wasm tiny hello": 30, "runc busybox echo": 10},
			P11: wasmDensity{Running: 99},
		},
		Hooks: &hooksResult{
			P5:       map[string]latency{"husk": {P50: 3, P99: 20}, "opa": {P50: 11, P99: 132}},
			Builtins: map[string]latency{"a": {P50: 5}, "b": {P50: 19}},
			E2E: map[string]stats{"pod, 0 hooks": {Median: 100}, "pod, 5 hooks": {Median: 101.5},
				"fresh shim, 0 hooks": {Median: 200}, "fresh shim, 5 hooks": {Median: 209}},
		},
		VMM: &vmmResult{
			P7: &stats{Median: 6}, P7How: "sample",
			P8:  map[string]vmmMem{"husk": {OtherKiB: 4 << 10}, "qemu microvm": {OtherKiB: 20 << 10}},
			P9:  &nestedBoot{ToInit: map[string][]float64{"husk": {1, 1.1, 0.9, 1, 1}, "qemu": {3, 3, 3, 3, 3}, "qemu-tuned": {2, 2, 2, 2, 2}}},
			P10: map[string]nested.VMMem{"builtin": {PSSKiB: 100 << 10, GuestPSSKiB: 90 << 10}, "qemu-microvm": {PSSKiB: 130 << 10, GuestPSSKiB: 90 << 10}},
			P12: p12Times{"builtin": {1, 1, 1}, "qemu": {2, 2, 2}},
		},
		P11: &p11Result{Pods: 250, Runtimes: map[string]p11Runtime{"husk": {Running: 250, HostKiBPerPod: 5000, PSSKiBPerPod: 4000}, "runc": {Running: 250, HostKiBPerPod: 6000, PSSKiBPerPod: 4200}}},
	}
	rows := targetRows(good)
	for _, r := range rows {
		if r.ID == "P13" {
			continue // no pass mark; not measured in the sample
		}
		if r.Verdict != verdictMet {
			t.Errorf("good sample: %s %q: %s (%s), want met", r.ID, r.What, r.Verdict, r.Why)
		}
	}
	// Every target of shared/TARGETS.md has a row.
	for _, id := range []string{"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13"} {
		verdictOf(t, rows, id, "")
	}

	bad := good
	bad.P1 = map[string]stats{"husk": {Median: 81}, "runc": {Median: 100}}
	bad.Density = map[string]densityInfo{
		"husk": {Shim1: memInfo{RSSKiB: 10000}, Shim10: memInfo{RSSKiB: 10000 + 9*1200}, Pods10: memInfo{RSSKiB: 15000, PSSKiB: 6100}},
		"runc": {Shim1: memInfo{RSSKiB: 17000}, Shim10: memInfo{RSSKiB: 17000 + 9*2048}, Pods10: memInfo{RSSKiB: 17000, PSSKiB: 6000}},
	}
	bad.Hooks = &hooksResult{
		P5:       map[string]latency{"husk": {P50: 3.4, P99: 20}, "opa": {P50: 11, P99: 99}},
		Builtins: map[string]latency{"a": {P50: 5}, "resource-defaults": {P50: 90}},
		E2E: map[string]stats{"pod, 0 hooks": {Median: 100}, "pod, 5 hooks": {Median: 102.5},
			"fresh shim, 0 hooks": {Median: 200}, "fresh shim, 5 hooks": {Median: 367}},
	}
	bad.VMM = &vmmResult{
		P7: &stats{Median: 8.5}, P7How: "sample",
		// Under 5 MiB but not under QEMU's.
		P8:     map[string]vmmMem{"husk": {OtherKiB: 4 << 10}, "qemu microvm": {OtherKiB: 4 << 10}},
		P9:     &nestedBoot{ToInit: map[string][]float64{"husk": {1.7, 1.7, 1.7, 1.7, 1.7}, "qemu": {3, 3, 3, 3, 3}, "qemu-tuned": {2, 2, 2, 2, 2}}},
		Errors: map[string]string{"P10": "no outer KVM\nmore", "P12": "P12 runs: builtin 0"},
	}
	bad.P11 = &p11Result{Pods: 250, Runtimes: map[string]p11Runtime{"husk": {Running: 249, HostKiBPerPod: 5000, PSSKiBPerPod: 4000}, "runc": {Running: 250, HostKiBPerPod: 6000, PSSKiBPerPod: 4200}}}
	rows = targetRows(bad)
	for _, c := range []struct {
		id, what string
		want     verdict
	}{
		{"P1", "ctr run", verdictMissed},
		{"P5", "p50", verdictMissed},
		{"P5", "p99", verdictMissed},
		{"P5", "built-in", verdictMissed},
		{"P6", "running pod", verdictMissed},
		{"P6", "first container", verdictMissed},
		{"P7", "", verdictMissed},
		{"P8", "", verdictMissed},
		{"P9", "", verdictMissed}, // 0.85 of the tuned one, though 0.57 of QEMU as shipped
		{"P10", "", verdictNotMeasured},
		{"P11", "pods", verdictMissed},
		{"P12", "", verdictNotMeasured},
		{"P2", "one idle", verdictMet},
		{"P2", "PSS, each of 10", verdictMissed},
		{"P2", "RSS, each of 10", verdictMet},
		{"P2", "per extra container", verdictMissed},
	} {
		if r := verdictOf(t, rows, c.id, c.what); r.Verdict != c.want {
			t.Errorf("bad sample: %s %q: %s, want %s", c.id, r.What, r.Verdict, c.want)
		}
	}
	// P9 against QEMU as shipped when the tuned one is slower: 1.7 s is
	// 0.61 of the tuned 2.8 s but 0.85 of the shipped 2 s.
	bad.VMM.P9 = &nestedBoot{ToInit: map[string][]float64{"husk": {1.7}, "qemu": {2}, "qemu-tuned": {2.8}}}
	if r := verdictOf(t, targetRows(bad), "P9", ""); r.Verdict != verdictMissed || !strings.Contains(r.Baseline, "as shipped (faster") {
		t.Errorf("P9 with a slower tuned QEMU: %s against %q, want missed against QEMU as shipped", r.Verdict, r.Baseline)
	}
	// All 250 run and MemAvailable dropped less, but the PSS is more than
	// runc's: missed.
	bad.P11 = &p11Result{Pods: 250, Runtimes: map[string]p11Runtime{"husk": {Running: 250, HostKiBPerPod: 6570, PSSKiBPerPod: 5090}, "runc": {Running: 250, HostKiBPerPod: 11790, PSSKiBPerPod: 4220}}}
	if r := verdictOf(t, targetRows(bad), "P11", "pods"); r.Verdict != verdictMissed {
		t.Errorf("P11 with a larger PSS per pod: %s, want missed", r.Verdict)
	}
	if r := verdictOf(t, rows, "P10", ""); r.Why != "no outer KVM" {
		t.Errorf("P10's why = %q, want the error's first line", r.Why)
	}
	if r := verdictOf(t, rows, "P5", "built-in"); !strings.Contains(r.What, "resource-defaults") {
		t.Errorf("P5's built-in row names %q, want the slowest, resource-defaults", r.What)
	}

	// An empty run: every row not measured, saying why.
	for _, r := range targetRows(result{}) {
		if r.Verdict != verdictNotMeasured || r.Why == "" {
			t.Errorf("empty result: %s %q: %s %q, want not measured with a reason", r.ID, r.What, r.Verdict, r.Why)
		}
	}
}
