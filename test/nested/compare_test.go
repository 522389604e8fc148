package nested

import (
	"strings"
	"testing"
)

// TestP9ScriptAndParse: the P9 script boots each VMM the asked number of
// times, the tuned QEMUs with the ELF kernel, and ParseP9 and ParseP7 read
// every run's line and the failures.
func TestP9ScriptAndParse(t *testing.T) {
	s := p9Script("console=ttyS0", 5, map[string]string{"qemu-tuned": P9TunedQEMU})
	for _, want := range []string{"-lt 5 ]", "p9 husk husk-vmm", "p9 qemu env", "p9 qemu-tuned env", P9TunedQEMU + " ", "-kernel /inner/vmlinux", "console=ttyS0 " + P9Cmdline, "HUSK-P9-FAIL: "} {
		if !strings.Contains(s, want) {
			t.Errorf("P9 script lacks %q:\n%s", want, s)
		}
	}
	if s := p9Script("x", 0, nil); strings.Contains(s, "vmlinux") || !strings.Contains(s, "-lt 1 ]") {
		t.Errorf("P9 script without tuned QEMUs and runs: %s", s)
	}

	console := "noise\nHUSK-P9: husk exec 1.5 init 3.0 inner 1.2\r\n" +
		"HUSK-P9: qemu exec 3.5 init 8.0 inner 4.0\n" +
		"HUSK-P9: husk exec 10 init 11.25 inner 1.1\n" +
		"HUSK-P9-FAIL: qemu-tuned: qemu-system-x86_64: bad option\n"
	times, fails := ParseP9(console)
	if got := times["husk"]; len(got) != 2 || got[0].ToInit != 1.5 || got[1].ToInit != 1.25 || got[1].InnerUptime != 1.1 {
		t.Errorf("husk's runs: %+v", got)
	}
	if got := times["qemu"]; len(got) != 1 || got[0].ToInit != 4.5 {
		t.Errorf("qemu's runs: %+v", got)
	}
	if len(fails) != 1 || !strings.Contains(fails[0], "qemu-tuned: qemu-system-x86_64: bad option") {
		t.Errorf("failures: %q", fails)
	}

	p7 := ParseP7("HUSK-VMMEM-P7-REF: cpu_ms 120.5\nHUSK-VMMEM-P7: first_run_cpu_ms 830.25\nHUSK-VMMEM-P7-TINY: first_run_cpu_ms 700\nHUSK-VMMEM-P7: first_run_cpu_ms 9\nHUSK-VMMEM-P7: first_run_cpu_ms x\n")
	if len(p7.FirstRunCPUMs) != 2 || p7.FirstRunCPUMs[0] != 830.25 || len(p7.RefCPUMs) != 1 || p7.RefCPUMs[0] != 120.5 || len(p7.TinyCPUMs) != 1 || p7.TinyCPUMs[0] != 700 {
		t.Errorf("ParseP7: %+v", p7)
	}
}
