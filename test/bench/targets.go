package main

// The closing table of make bench: every target of shared/TARGETS.md
// (P1–P13), what this run measured for it, its baseline from the same run,
// the ratio, and whether it was met, missed or not measured (and why).
// Every verdict is computed here from the result struct; the target values
// live in one place, targetLimits.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/huskrt/husk/test/devenv"
)

// targetLimits are the targets of shared/TARGETS.md, the only copy in the
// bench: the verdicts and the table's target column both come from here.
var targetLimits = struct {
	P1Ratio           float64 // husk/runc, ctr run --rm
	P2Ratio           float64 // shim RSS (PSS) husk/runc
	P2ExtraMiB        float64 // shim RSS per extra container
	P3EchoRatio       float64 // wasm hello ÷ runc busybox echo
	P3WazeroRatio     float64 // wasm hello ÷ runc running the wazero CLI
	P4Ratio           float64 // wasm tasks/s ÷ runc's, at least
	P5P50Ratio        float64 // husk/OPA p50
	P5P99Ratio        float64 // husk/OPA p99
	P5BuiltinP50US    float64 // every built-in policy's p50
	P6PodMs           float64 // 5 hooks over none, container in a running pod
	P6FreshMs         float64 // 5 hooks over none, a pod's first container
	P7CPUMs           float64 // VMM start → first KVM_RUN
	P8MiB             float64 // VMM RSS less guest RAM (and < QEMU's)
	P9Ratio           float64 // husk ÷ tuned QEMU microvm, boot to /init
	P10MiB            float64 // VMM PSS less guest RAM
	P10Ratio          float64 // builtin ÷ QEMU
	P11MemRatio       float64 // host memory per pod, husk ÷ runc
	P11WasmContainers int     // Wasm containers running at once (wasm.go's pod: 99 and its sandbox)
	P12Ratio          float64 // builtin ÷ qemu backend, ctr run → first output
}{
	P1Ratio: 0.8, P2Ratio: 1, P2ExtraMiB: 1, P3EchoRatio: 0.8, P3WazeroRatio: 0.7, P4Ratio: 2,
	P5P50Ratio: 0.3, P5P99Ratio: 0.2, P5BuiltinP50US: 20, P6PodMs: 2, P6FreshMs: 10,
	P7CPUMs: 8, P8MiB: 5, P9Ratio: 0.8, P10MiB: 20, P10Ratio: 0.5, P11MemRatio: 1, P11WasmContainers: 99, P12Ratio: 0.7,
}

// verdict is a target row's outcome.
type verdict string

const (
	verdictMet         verdict = "met"
	verdictMissed      verdict = "missed"
	verdictNotMeasured verdict = "not measured"
	verdictReported    verdict = "reported" // a row with no pass mark (P13)
)

// targetRow is one line of the closing table.
type targetRow struct {
	ID       string  `json:"id"`
	What     string  `json:"what"`
	Measured string  `json:"measured"`
	Baseline string  `json:"baseline"`
	Ratio    string  `json:"ratio"`
	Target   string  `json:"target"`
	Verdict  verdict `json:"verdict"`
	Why      string  `json:"why,omitempty"` // why not measured
}

// judge is met when ok holds.
func judge(ok bool) verdict {
	if ok {
		return verdictMet
	}
	return verdictMissed
}

// notRun says why a part has no data: it did not run in this invocation,
// or it failed with errs' entry for one of keys.
func notRun(part string, errs map[string]string, keys ...string) string {
	for _, k := range keys {
		if e := errs[k]; e != "" {
			return firstLine(e)
		}
	}
	return part + " did not run in this invocation"
}

// firstLine keeps an error's first line, at most 160 bytes, for a table cell.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func fmtRatio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func mibOf(kib int) float64 { return float64(kib) / 1024 }

// targetRows computes the closing table from a run's results.
func targetRows(r result) []targetRow {
	L := targetLimits
	var rows []targetRow
	add := func(row targetRow) { rows = append(rows, row) }
	missing := func(id, what, target, why string) {
		add(targetRow{ID: id, What: what, Measured: "—", Baseline: "—", Ratio: "—", Target: target, Verdict: verdictNotMeasured, Why: why})
	}
	vmmErrs := map[string]string{}
	if r.VMM != nil {
		vmmErrs = r.VMM.Errors
	}

	// P1
	{
		what, target := "`ctr run --rm` /bin/true, median", fmt.Sprintf("husk/runc ≤ %.2g", L.P1Ratio)
		h, hok := r.P1["husk"]
		rc, rok := r.P1["runc"]
		if hok && rok && rc.Median > 0 {
			add(targetRow{ID: "P1", What: what, Measured: fmt.Sprintf("%.1f ms", h.Median), Baseline: fmt.Sprintf("runc %.1f ms", rc.Median),
				Ratio: fmtRatio(h.Median, rc.Median), Target: target, Verdict: judge(h.Median/rc.Median <= L.P1Ratio)})
		} else {
			missing("P1", what, target, "P1 did not run in this invocation")
		}
	}

	// P2
	{
		hd, hok := r.Density["husk"]
		rd, rok := r.Density["runc"]
		what, target := "shim RSS, one idle container", fmt.Sprintf("≤ %.2g× runc", L.P2Ratio)
		if hok && rok && rd.Shim1.RSSKiB > 0 && hd.Shim1.RSSKiB > 0 {
			add(targetRow{ID: "P2", What: what, Measured: fmt.Sprintf("%.1f MiB", mibOf(hd.Shim1.RSSKiB)), Baseline: fmt.Sprintf("runc %.1f MiB", mibOf(rd.Shim1.RSSKiB)),
				Ratio: fmtRatio(float64(hd.Shim1.RSSKiB), float64(rd.Shim1.RSSKiB)), Target: target,
				Verdict: judge(float64(hd.Shim1.RSSKiB) <= L.P2Ratio*float64(rd.Shim1.RSSKiB))})
		} else {
			missing("P2", what, target, "the density part did not run in this invocation")
		}
		for _, m := range []struct {
			what string
			get  func(memInfo) int
		}{{"shim PSS, each of 10 single-container pods running", func(m memInfo) int { return m.PSSKiB }},
			{"shim RSS, each of 10 single-container pods running", func(m memInfo) int { return m.RSSKiB }}} {
			target := fmt.Sprintf("≤ %.2g× runc", L.P2Ratio)
			if !hok || !rok || m.get(hd.Pods10) <= 0 || m.get(rd.Pods10) <= 0 {
				missing("P2", m.what, target, "the density part did not run in this invocation")
				continue
			}
			h, b := m.get(hd.Pods10), m.get(rd.Pods10)
			add(targetRow{ID: "P2", What: m.what, Measured: fmt.Sprintf("%.1f MiB", mibOf(h)), Baseline: fmt.Sprintf("runc %.1f MiB", mibOf(b)),
				Ratio: fmtRatio(float64(h), float64(b)), Target: target, Verdict: judge(float64(h) <= L.P2Ratio*float64(b))})
		}
		what, target = "shim RSS per extra container (1 → 10 in a pod)", fmt.Sprintf("≤ %.2g MiB", L.P2ExtraMiB)
		if hok && rok && hd.Shim10.RSSKiB > 0 && rd.Shim10.RSSKiB > 0 {
			he, re := (hd.Shim10.RSSKiB-hd.Shim1.RSSKiB)/9, (rd.Shim10.RSSKiB-rd.Shim1.RSSKiB)/9
			add(targetRow{ID: "P2", What: what, Measured: fmt.Sprintf("%.2f MiB", mibOf(he)), Baseline: fmt.Sprintf("runc %.2f MiB", mibOf(re)),
				Ratio: fmtRatio(float64(he), float64(re)), Target: target, Verdict: judge(mibOf(he) <= L.P2ExtraMiB)})
		} else {
			missing("P2", what, target, "the density part did not run in this invocation")
		}
	}

	// P3, P4
	{
		w := r.Wasm
		for _, p := range []struct{ name, base, target string }{
			{"husk wasm tiny hello", "runc busybox echo", fmt.Sprintf("≤ %.2g×", L.P3EchoRatio)},
			{"husk wasm tiny hello", "runc wazero CLI tiny hello", fmt.Sprintf("≤ %.2g×", L.P3WazeroRatio)},
		} {
			lim := L.P3EchoRatio
			if strings.Contains(p.base, "wazero") {
				lim = L.P3WazeroRatio
			}
			what := "`ctr run --rm` small WASI hello (cache warm), median"
			var a, b stats
			ok := w != nil
			if ok {
				var aok, bok bool
				a, aok = w.P3[p.name]
				b, bok = w.P3[p.base]
				ok = aok && bok && b.Median > 0
			}
			if !ok {
				missing("P3", what+" vs "+p.base, p.target+" "+p.base, "the Wasm part did not run in this invocation")
				continue
			}
			add(targetRow{ID: "P3", What: what, Measured: fmt.Sprintf("%.1f ms", a.Median), Baseline: fmt.Sprintf("%s %.1f ms", p.base, b.Median),
				Ratio: fmtRatio(a.Median, b.Median), Target: p.target, Verdict: judge(a.Median/b.Median <= lim)})
		}
		what, target := "200 short tasks, 4 at a time, Wasm tiny hello", fmt.Sprintf("≥ %.2g× runc's tasks/s", L.P4Ratio)
		if w != nil && w.P4["husk wasm tiny hello"] > 0 && w.P4["runc busybox echo"] > 0 {
			h, b := w.P4["husk wasm tiny hello"], w.P4["runc busybox echo"]
			add(targetRow{ID: "P4", What: what, Measured: fmt.Sprintf("%.1f tasks/s", h), Baseline: fmt.Sprintf("runc busybox echo %.1f tasks/s", b),
				Ratio: fmtRatio(h, b), Target: target, Verdict: judge(h/b >= L.P4Ratio)})
		} else {
			missing("P4", what, target, "the Wasm part did not run in this invocation")
		}
	}

	// P5, P6
	{
		hk := r.Hooks
		h, hok := latency{}, false
		o, ook := latency{}, false
		if hk != nil {
			h, hok = hk.P5["husk"]
			o, ook = hk.P5["opa"]
		}
		for _, p := range []struct {
			what string
			lim  float64
			get  func(latency) float64
		}{
			{"one warm hook call, p50", L.P5P50Ratio, func(l latency) float64 { return l.P50 }},
			{"one warm hook call, p99", L.P5P99Ratio, func(l latency) float64 { return l.P99 }},
		} {
			target := fmt.Sprintf("≤ %.2g× OPA", p.lim)
			if !hok || !ook || p.get(o) <= 0 {
				missing("P5", p.what, target, "the hooks part did not run in this invocation")
				continue
			}
			add(targetRow{ID: "P5", What: p.what, Measured: fmt.Sprintf("%.1f µs", p.get(h)), Baseline: fmt.Sprintf("OPA %.1f µs", p.get(o)),
				Ratio: fmtRatio(p.get(h), p.get(o)), Target: target, Verdict: judge(p.get(h) <= p.lim*p.get(o))})
		}
		what, target := "slowest built-in policy, p50", fmt.Sprintf("≤ %.3g µs each", L.P5BuiltinP50US)
		if hk != nil && len(hk.Builtins) > 0 {
			worst, name := 0.0, ""
			for _, k := range slices.Sorted(maps.Keys(hk.Builtins)) {
				if l := hk.Builtins[k]; l.P50 >= worst {
					worst, name = l.P50, k
				}
			}
			add(targetRow{ID: "P5", What: what + " (" + name + ")", Measured: fmt.Sprintf("%.1f µs", worst), Baseline: "—", Ratio: "—",
				Target: target, Verdict: judge(worst <= L.P5BuiltinP50US)})
		} else {
			missing("P5", what, target, "the hooks part did not run in this invocation")
		}
		for _, p := range []struct{ what, with, without string }{
			{"container create with 5 hooks in a running pod, over none", "pod, 5 hooks", "pod, 0 hooks"},
			{"a pod's first container (fresh shim), 5 modules, over none", "fresh shim, 5 hooks", "fresh shim, 0 hooks"},
		} {
			lim := L.P6PodMs
			if strings.HasPrefix(p.with, "fresh") {
				lim = L.P6FreshMs
			}
			target := fmt.Sprintf("≤ +%.3g ms", lim)
			var a, b stats
			ok := hk != nil
			if ok {
				var aok, bok bool
				a, aok = hk.E2E[p.with]
				b, bok = hk.E2E[p.without]
				ok = aok && bok && b.Median > 0
			}
			if !ok {
				missing("P6", p.what, target, "the hooks part did not run in this invocation")
				continue
			}
			add(targetRow{ID: "P6", What: p.what + ", median", Measured: fmt.Sprintf("%+.1f ms (%.1f)", a.Median-b.Median, a.Median),
				Baseline: fmt.Sprintf("no hooks %.1f ms", b.Median), Ratio: fmtRatio(a.Median, b.Median), Target: target,
				Verdict: judge(a.Median-b.Median <= lim)})
		}
	}

	// P7–P10, P12 (vmm.go, p12.go)
	{
		v := r.VMM
		what, target := "built-in VMM: process start → first KVM_RUN, CPU ms, median", fmt.Sprintf("≤ %.3g CPU ms", L.P7CPUMs)
		if v != nil && v.P7 != nil {
			add(targetRow{ID: "P7", What: what + " (" + v.P7How + ")", Measured: fmt.Sprintf("%.2f ms", v.P7.Median), Baseline: "—", Ratio: "—",
				Target: target, Verdict: judge(v.P7.Median <= L.P7CPUMs)})
		} else {
			missing("P7", what, target, notRun("the VMM part", vmmErrs, "P7", "P7/P8"))
		}
		what, target = fmt.Sprintf("built-in VMM RSS less guest RAM, %d MiB guest", p8GuestMiB), fmt.Sprintf("≤ %.3g MiB and < QEMU", L.P8MiB)
		var h, q vmmMem
		hok, qok := false, false
		if v != nil {
			h, hok = v.P8["husk"]
			q, qok = v.P8["qemu microvm"]
		}
		if hok && qok {
			add(targetRow{ID: "P8", What: what + " (" + v.P8How + ")", Measured: fmt.Sprintf("%.1f MiB", mibOf(h.OtherKiB)),
				Baseline: fmt.Sprintf("QEMU microvm %.1f MiB", mibOf(q.OtherKiB)), Ratio: fmtRatio(float64(h.OtherKiB), float64(q.OtherKiB)), Target: target,
				Verdict: judge(mibOf(h.OtherKiB) <= L.P8MiB && h.OtherKiB < q.OtherKiB)})
		} else {
			missing("P8", what, target, notRun("the VMM part", vmmErrs, "P8 husk", "P8 qemu", "P8", "P7/P8"))
		}
		// P9 is judged against the faster of the two QEMU rows: the tuned
		// one is meant to be QEMU at its best, and where it is slower than
		// QEMU as shipped (PVH here), the shipped one is the bar.
		what, target = "nested harness: VMM exec → inner /init, median", fmt.Sprintf("≤ %.2g× tuned QEMU microvm (or as shipped, if faster)", L.P9Ratio)
		var nb *nestedBoot
		if v != nil {
			nb = v.P9
		}
		if hm, tm, sm := nb.median("husk"), nb.median("qemu-tuned"), nb.median("qemu"); hm > 0 && (tm > 0 || sm > 0) {
			bar, name := tm, "tuned"
			if tm == 0 || (sm > 0 && sm < tm) {
				bar, name = sm, "as shipped (faster than tuned)"
				if tm == 0 {
					name = "as shipped (tuned not measured: " + firstLine(vmmErrs["P9 qemu-tuned"]) + ")"
				}
			}
			add(targetRow{ID: "P9", What: fmt.Sprintf("%s of %d interleaved", what, len(nb.ToInit["husk"])), Measured: fmt.Sprintf("%.2f s", hm),
				Baseline: fmt.Sprintf("QEMU microvm %s %.2f s (tuned %.2f s, as shipped %.2f s)", name, bar, tm, sm),
				Ratio:    fmtRatio(hm, bar), Target: target, Verdict: judge(hm <= L.P9Ratio*bar)})
		} else {
			missing("P9", what, target, notRun("the VMM part", vmmErrs, "P9"))
		}
		what, target = fmt.Sprintf("VM pod: VMM process PSS less guest RAM (%d MiB guest, agent up), nested", p10GuestMiB),
			fmt.Sprintf("≤ %.3g MiB and ≤ %.2g× QEMU", L.P10MiB, L.P10Ratio)
		var hm, qm uint64
		if v != nil {
			hm, qm = v.P10["builtin"].OverheadPSSKiB(), v.P10["qemu-microvm"].OverheadPSSKiB()
		}
		if hm > 0 && qm > 0 {
			add(targetRow{ID: "P10", What: what, Measured: fmt.Sprintf("%.1f MiB", mibOf(int(hm))), Baseline: fmt.Sprintf("QEMU microvm %.1f MiB", mibOf(int(qm))),
				Ratio: fmtRatio(float64(hm), float64(qm)), Target: target,
				Verdict: judge(mibOf(int(hm)) <= L.P10MiB && float64(hm) <= L.P10Ratio*float64(qm))})
		} else {
			missing("P10", what, target, notRun("the VMM part", vmmErrs, "P10"))
		}
		what, target = "VM container: `ctr run` → first output, nested, median", fmt.Sprintf("≤ %.2g× qemu backend", L.P12Ratio)
		if v != nil && len(v.P12["builtin"]) > 0 && len(v.P12["qemu"]) > 0 {
			b, q := summarize(v.P12["builtin"]).Median, summarize(v.P12["qemu"]).Median
			add(targetRow{ID: "P12", What: what, Measured: fmt.Sprintf("%.2f s", b), Baseline: fmt.Sprintf("qemu backend %.2f s", q),
				Ratio: fmtRatio(b, q), Target: target, Verdict: judge(q > 0 && b <= L.P12Ratio*q)})
		} else {
			missing("P12", what, target, notRun("the VMM part", vmmErrs, "P12"))
		}
	}

	// P11
	{
		what, target := fmt.Sprintf("%d single-container pods (a shim each) at once: running; host memory per pod (MemAvailable drop; PSS of shim and container)", p11Pods),
			fmt.Sprintf("all run; both ≤ %.2g× runc's", L.P11MemRatio)
		if p := r.P11; p != nil && p.Err == "" {
			h, rc := p.Runtimes["husk"], p.Runtimes["runc"]
			ok := h.Running == p.Pods && rc.Running == p.Pods && h.HostKiBPerPod > 0 && rc.HostKiBPerPod > 0 && h.PSSKiBPerPod > 0 && rc.PSSKiBPerPod > 0
			v := verdictMissed
			if ok && float64(h.HostKiBPerPod) <= L.P11MemRatio*float64(rc.HostKiBPerPod) && float64(h.PSSKiBPerPod) <= L.P11MemRatio*float64(rc.PSSKiBPerPod) {
				v = verdictMet
			}
			add(targetRow{ID: "P11", What: what, Measured: fmt.Sprintf("%d/%d running, %.2f MiB; %.2f MiB", h.Running, p.Pods, mibOf(h.HostKiBPerPod), mibOf(h.PSSKiBPerPod)),
				Baseline: fmt.Sprintf("runc %d/%d, %.2f MiB; %.2f MiB", rc.Running, p.Pods, mibOf(rc.HostKiBPerPod), mibOf(rc.PSSKiBPerPod)),
				Ratio:    fmtRatio(float64(h.HostKiBPerPod), float64(rc.HostKiBPerPod)) + "; " + fmtRatio(float64(h.PSSKiBPerPod), float64(rc.PSSKiBPerPod)),
				Target:   target, Verdict: v})
		} else {
			why := "the 250-pod part did not run in this invocation"
			if p != nil {
				why = firstLine(p.Err)
			}
			missing("P11", what, target, why)
		}
		what, target = "Wasm containers running at once in one pod", fmt.Sprintf("all %d", L.P11WasmContainers)
		if w := r.Wasm; w != nil {
			add(targetRow{ID: "P11", What: what, Measured: fmt.Sprintf("%d", w.P11.Running), Baseline: "—", Ratio: "—", Target: target,
				Verdict: judge(w.P11.Running >= L.P11WasmContainers)})
		} else {
			missing("P11", what, target, "the Wasm part did not run in this invocation")
		}
	}

	// P13: reported, no pass mark.
	{
		what := "CRI pod start: `crictl runp` + first container running, median"
		if p := r.Pods; p != nil && p.Skipped == "" && p.ReadyMs["runc"].Median > 0 {
			rc, vm := p.ReadyMs["runc"].Median, p.ReadyMs[devenv.VirtHandler].Median
			add(targetRow{ID: "P13", What: what + ", husk VM pod on qemu (TCG here)", Measured: fmt.Sprintf("%.0f ms", vm), Baseline: fmt.Sprintf("runc %.0f ms", rc),
				Ratio: fmtRatio(vm, rc), Target: "reported per backend", Verdict: verdictReported})
		} else {
			why := "the CRI pod part did not run in this invocation"
			if p != nil && p.Skipped != "" {
				why = firstLine(p.Skipped)
			}
			missing("P13", what+", host", "reported per backend", why)
		}
		if v := r.VMM; v != nil && v.NestedPods != nil && v.NestedPods.ReadySecs["runc"].Median > 0 {
			np := v.NestedPods
			rc := np.ReadySecs["runc"].Median
			for _, h := range nestedPodHandlers[1:] {
				s := np.ReadySecs[h].Median
				add(targetRow{ID: "P13", What: what + ", nested harness, " + h, Measured: fmt.Sprintf("%.1f s", s), Baseline: fmt.Sprintf("runc %.1f s", rc),
					Ratio: fmtRatio(s, rc), Target: "reported per backend", Verdict: verdictReported})
			}
		} else {
			missing("P13", what+", nested harness", "reported per backend", notRun("the VMM part", vmmErrs, "nested CRI pods"))
		}
	}
	return rows
}

// printTargets prints the closing table.
func printTargets(rows []targetRow) {
	fmt.Println()
	fmt.Println("Targets (shared/TARGETS.md), computed from this run:")
	fmt.Println()
	fmt.Println("| id | what | measured | baseline | ratio | target | verdict |")
	fmt.Println("|---|---|---|---|---|---|---|")
	count := map[verdict]int{}
	for _, r := range rows {
		v := string(r.Verdict)
		switch r.Verdict {
		case verdictMissed:
			v = "**missed**"
		case verdictNotMeasured:
			v = "not measured (" + r.Why + ")"
		}
		count[r.Verdict]++
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", r.ID, r.What, r.Measured, r.Baseline, r.Ratio, r.Target, v)
	}
	fmt.Printf("\n%d met, %d missed, %d not measured, %d reported.\n", count[verdictMet], count[verdictMissed], count[verdictNotMeasured], count[verdictReported])
}
