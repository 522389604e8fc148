package main

// The VMM side of the bench (shared/TARGETS.md P7, P8, P9, P10, P12),
// beside QEMU in the same run. It reports and never fails the bench: a part
// that cannot run (no /dev/kvm, no QEMU, no nested assets) says why in
// its row. HUSK_BENCH_ONLY=vmm runs only this part (no host containerd),
// HUSK_BENCH_ONLY=p12 only P12, HUSK_BENCH_ONLY=nestedpods only the CRI
// pods in the nested harness (nestedpods.go):
//
//	HUSK_BENCH_ONLY=vmm go run ./test/bench

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/test/nested"
)

type vmmResult struct {
	// P7: process start → vCPU 0's first KVM_RUN, CPU ms (user+sys) of
	// the static VMM, tiny guest.
	P7    *stats `json:"p7_first_instruction_cpu_ms,omitempty"`
	P7How string `json:"p7_how,omitempty"` // which guest, which process, where
	// P7Nested: the same, CPU ms in the emulated outer guest, and
	// P7Slowdown, the outer guest's slowdown on a fixed load (P7 is
	// P7Nested ÷ P7Slowdown).
	P7Nested   *stats  `json:"p7_nested_cpu_ms,omitempty"`
	P7Slowdown float64 `json:"p7_outer_guest_slowdown,omitempty"`
	// P7NestedTiny: the same VMM process there with the tiny halted
	// guest, no initrd: what the guest image's loading adds is the
	// difference.
	P7NestedTiny *stats `json:"p7_nested_tiny_guest_cpu_ms,omitempty"`
	// P7Tiny, P8Tiny: a halted tiny guest on this host's own KVM (none
	// here), the static VMM command and QEMU microvm.
	P7Tiny *stats            `json:"p7_tiny_guest_host_kvm_cpu_ms,omitempty"`
	P8Tiny map[string]vmmMem `json:"p8_tiny_guest_host_kvm_kib,omitempty"`
	// P8: RSS without guest RAM, 128 MiB guest, KiB.
	P8    map[string]vmmMem `json:"p8_rss_without_guest_kib,omitempty"`
	P8How string            `json:"p8_how,omitempty"`
	// P9: boot to the inner guest's /init in the nested harness, seconds.
	P9 *nestedBoot `json:"p9_nested_boot_to_init,omitempty"`
	// P10: a VM pod's VMM process, guest image booted and its agent
	// answering, in the nested harness: PSS and the guest RAM's share.
	P10 map[string]nested.VMMem `json:"p10_vm_pod_memory,omitempty"`
	// P12: ctr run → first output of a VM container, seconds, per backend.
	P12 p12Times `json:"p12_vm_container_first_output_secs,omitempty"`
	// NestedPods: CRI pods in the nested harness, runc and husk's VM pods
	// on both backends (nestedpods.go).
	NestedPods *nestedPodsResult `json:"nested_cri_pods,omitempty"`
	Errors     map[string]string `json:"errors,omitempty"`
}

type vmmMem struct {
	TotalRSSKiB int `json:"total_rss_kib"`
	GuestRSSKiB int `json:"guest_ram_rss_kib"`
	OtherKiB    int `json:"rss_without_guest_kib"`
}

type nestedBoot struct {
	// Per VMM ("husk", "qemu" as shipped, "qemu-tuned"), each run's
	// seconds from the VMM's exec to the inner /init line, measured by
	// the outer guest's clock, and the inner guest's own uptime there.
	ToInit      map[string][]float64 `json:"to_init_secs"`
	InnerUptime map[string][]float64 `json:"inner_uptime_secs"`
}

// median is vmm's median seconds to /init; 0 without runs.
func (n *nestedBoot) median(vmm string) float64 {
	if n == nil || len(n.ToInit[vmm]) == 0 {
		return 0
	}
	return summarize(n.ToInit[vmm]).Median
}

// p9Runs is how many interleaved boots P9 makes with each VMM
// (HUSK_BENCH_P9_RUNS changes it, to try tunings quickly).
var p9Runs = 5

func init() {
	if n, err := strconv.Atoi(os.Getenv("HUSK_BENCH_P9_RUNS")); err == nil && n > 0 {
		p9Runs = n
	}
}

const p8GuestMiB = 128

func init() {
	switch os.Getenv("HUSK_BENCH_ONLY") {
	case "vmm":
		r := benchVMM(context.Background())
		printVMMTable(r)
		printTargets(targetRows(result{VMM: r}))
		os.Exit(0)
	case "p9": // P9 alone: one outer boot, p9Runs interleaved inner boots per VMM
		r := &vmmResult{Errors: map[string]string{}}
		err := func() error {
			dir, err := os.MkdirTemp("", "hbench-p9")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			root, err := devenv.RepoRoot()
			if err != nil {
				return err
			}
			vmmBin := filepath.Join(dir, "husk-vmm-test") // not husk-vmm: the shim's VMM program is built into dir too
			if err := buildVMMTest(context.Background(), root, vmmBin); err != nil {
				return err
			}
			r.P9, err = p9(context.Background(), root, dir, vmmBin, r)
			return err
		}()
		if err != nil {
			r.Errors["P9"] = err.Error()
		}
		printVMMTable(r)
		printTargets(targetRows(result{VMM: r}))
		os.Exit(0)
	case "p7p8": // P7 and P8 alone: one vmmem run in the nested harness
		r := &vmmResult{P8: map[string]vmmMem{}, Errors: map[string]string{}}
		err := func() error {
			dir, err := os.MkdirTemp("", "hbench-p7p8")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			root, err := devenv.RepoRoot()
			if err != nil {
				return err
			}
			return p7p8(context.Background(), root, dir, r)
		}()
		if err != nil {
			r.Errors["P7/P8"] = err.Error()
		}
		printVMMTable(r)
		printTargets(targetRows(result{VMM: r}))
		os.Exit(0)
	case "p12":
		r := &vmmResult{Errors: map[string]string{}}
		dir, err := os.MkdirTemp("", "hbench-p12")
		if err == nil {
			defer os.RemoveAll(dir)
			var root string
			if root, err = devenv.RepoRoot(); err == nil {
				r.P12, err = p12(context.Background(), root, dir)
			}
		}
		if err != nil {
			r.Errors["P12"] = err.Error()
		}
		fmt.Println("| id | what | QEMU | husk | husk/QEMU | target |")
		fmt.Println("|---|---|---|---|---|---|")
		printP12Row(r)
		os.Exit(0)
	}
}

// benchVMM measures P7, P8, P9, P10, P12 and the nested CRI pods; errors
// go into the result.
func benchVMM(ctx context.Context) *vmmResult {
	r := &vmmResult{P8: map[string]vmmMem{}, Errors: map[string]string{}}
	fail := func(what string, err error) {
		r.Errors[what] = err.Error()
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", what, err)
	}
	dir, err := os.MkdirTemp("", "hbench-vmm")
	if err != nil {
		fail("setup", err)
		return r
	}
	defer os.RemoveAll(dir)
	root, err := devenv.RepoRoot()
	if err != nil {
		fail("setup", err)
		return r
	}
	vmmBin := filepath.Join(dir, "husk-vmm-test") // not husk-vmm: the shim's VMM program is built into dir too
	if err := buildVMMTest(ctx, root, vmmBin); err != nil {
		fail("setup", err)
		return r
	}
	kernel := filepath.Join(dir, "tiny.bzImage")
	if err := os.WriteFile(kernel, tinyBzImage(), 0o644); err != nil {
		fail("setup", err)
		return r
	}
	// P7 and P8 as the virt handler runs the VMM: the guest image in
	// runtime/virt/builtin's confined VMM process, in the nested harness.
	if err := p7p8(ctx, root, dir, r); err != nil {
		fail("P7/P8", err)
	}
	// The tiny halted guest straight on this host's KVM, where it has one.
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		r.Errors["tiny guest"] = fmt.Sprintf("no usable /dev/kvm: %v", err)
	} else {
		f.Close()
		if s, err := p7(ctx, vmmBin, kernel); err != nil {
			fail("P7 tiny", err)
		} else {
			r.P7Tiny = &s
		}
		r.P8Tiny = map[string]vmmMem{}
		if m, err := p8(ctx, kernel, vmmBin, "--kernel", kernel, "--mem", fmt.Sprintf("%dM", p8GuestMiB), "--serial", os.DevNull, "--timeout", "60s"); err != nil {
			fail("P8 tiny husk", err)
		} else {
			r.P8Tiny["husk"] = m
		}
		if qemu, err := exec.LookPath("qemu-system-x86_64"); err != nil {
			fail("P8 tiny qemu", err)
		} else if m, err := p8(ctx, kernel, qemu, "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", strconv.Itoa(p8GuestMiB),
			"-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "null", "-kernel", kernel); err != nil {
			fail("P8 tiny qemu", err)
		} else {
			r.P8Tiny["qemu microvm"] = m
		}
	}
	if nb, err := p9(ctx, root, dir, vmmBin, r); err != nil {
		fail("P9", err)
	} else {
		r.P9 = nb
	}
	if m, err := p10(ctx, root, dir); err != nil {
		fail("P10", err)
	} else {
		r.P10 = m
	}
	if t, err := p12(ctx, root, dir); err != nil {
		fail("P12", err)
	} else {
		r.P12 = t
	}
	if p, err := nestedPods(ctx, root, dir); err != nil {
		fail("nested CRI pods", err)
	} else {
		r.NestedPods = p
	}
	return r
}

// p7Runs is how many VMM processes P7 starts (nested).
const p7Runs = 5

// p7p8 runs the nested harness's vmmem with a p8GuestMiB guest and its P7
// part: the guest image the virt handler boots (its kernel and initrd),
// in runtime/virt/builtin's confined VMM process as the handler starts it
// (re-executed, configured over its control channel, confined, seccomp),
// and in QEMU microvm with vhost-vsock. P8 is each VMM's RSS less its
// guest RAM's, once the agent has answered. P7 is each VMM process's CPU
// time at its guest's first instruction; the outer guest is emulated
// (TCG), so its CPU ms are divided by the outer guest's slowdown on a
// fixed load (reading and hashing the same kernel and initrd) against
// this host, measured in the same run.
func p7p8(ctx context.Context, root, dir string, r *vmmResult) error {
	as, err := nested.FindAssets(root)
	if err != nil {
		return err
	}
	guest, bin, err := vmmemBuild(ctx, root, dir)
	if err != nil {
		return err
	}
	kernel, initrd := filepath.Join(guest, guestimage.KernelFile), filepath.Join(guest, guestimage.InitrdFile)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	res, console, err := nested.RunVMMemP7(ctx, as, bin, kernel, initrd, p8GuestMiB, p7Runs, tinyBzImage(), dir, nil)
	if err != nil {
		lines := strings.Split(console, "\n")
		err = fmt.Errorf("%w; console ends:\n%s", err, strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
	for name, key := range map[string]string{"builtin": "husk", "qemu-microvm": "qemu microvm"} {
		if m, ok := res[name]; ok && m.GuestRSSKiB > 0 {
			r.P8[key] = vmmMem{TotalRSSKiB: int(m.RSSKiB), GuestRSSKiB: int(m.GuestRSSKiB), OtherKiB: int(m.RSSKiB - min(m.GuestRSSKiB, m.RSSKiB))}
		}
	}
	r.P8How = "guest image booted, agent answering, nested harness: runtime/virt/builtin's VMM process; QEMU microvm with vhost-vsock"
	// Where the builtin VMM's memory beside its guest is, by mapping; the
	// P7 runs one by one.
	for _, l := range strings.Split(console, "\n") {
		if strings.HasPrefix(l, "HUSK-VMMEM-MAP: ") {
			fmt.Fprintln(os.Stderr, "bench P8:", strings.TrimSpace(strings.TrimPrefix(l, "HUSK-VMMEM-MAP: ")))
		}
		if strings.HasPrefix(l, "HUSK-VMMEM-P7") { // each run, and the shim re-executed beside husk-vmm
			fmt.Fprintln(os.Stderr, "bench P7:", strings.TrimSpace(l))
		}
	}
	p7 := nested.ParseP7(console)
	if len(p7.FirstRunCPUMs) > 0 && len(p7.RefCPUMs) > 0 {
		var host []float64
		for range 5 {
			d, herr := refLoad(bin, kernel, initrd)
			if herr != nil {
				return errors.Join(err, herr)
			}
			host = append(host, float64(d.Microseconds())/1000)
		}
		outer, here := summarize(p7.RefCPUMs).Median, summarize(host).Median
		if outer > 0 && here > 0 {
			f := outer / here
			n := summarize(p7.FirstRunCPUMs)
			r.P7Nested, r.P7Slowdown = &n, f
			if len(p7.TinyCPUMs) > 0 {
				t := summarize(p7.TinyCPUMs)
				r.P7NestedTiny = &t
			}
			r.P7 = &stats{Median: n.Median / f, P90: n.P90 / f, Min: n.Min / f}
			r.P7How = fmt.Sprintf("estimate: guest image, the virt handler's VMM process, nested: %.1f CPU ms there ÷ %.1f, the emulated outer guest's slowdown on a fixed load (%.1f ms there, %.2f ms here)",
				n.Median, f, outer, here)
		}
	}
	return err
}

// refLoad runs vmmem's reference load on this host (vmmem ref FILE...: a
// process starts and reads the files into fresh anonymous memory) and
// returns that process's CPU time (user + system).
func refLoad(vmmem string, files ...string) (time.Duration, error) {
	cmd := exec.Command(vmmem, append([]string{"ref"}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("reference load: %v: %s", err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// vmmemBuild builds the guest image and the vmmem program under dir,
// once per bench run.
func vmmemBuild(ctx context.Context, root, dir string) (guest, bin string, err error) {
	bin = filepath.Join(dir, "vmmem")
	guest = filepath.Join(dir, "guest")
	if _, err := os.Stat(bin); err == nil {
		return guest, bin, nil
	}
	if guest, err = nested.BuildGuestImage(ctx, root, dir); err != nil {
		return "", "", err
	}
	if err := nested.BuildVMMem(ctx, root, bin); err != nil {
		return "", "", err
	}
	return guest, bin, nil
}

// buildVMMTest builds the static VMM command (cmd/husk-vmm-test) into out.
func buildVMMTest(ctx context.Context, root, out string) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/husk-vmm-test")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build husk-vmm-test: %v: %s", err, b)
	}
	return nil
}

// p10GuestMiB is the guest memory of P10's VMs: the virt handler's default.
const p10GuestMiB = 256

// p10 boots the guest image in the nested harness under the builtin
// hypervisor's VMM process and under QEMU microvm (test/nested vmmem).
func p10(ctx context.Context, root, dir string) (map[string]nested.VMMem, error) {
	as, err := nested.FindAssets(root)
	if err != nil {
		return nil, err
	}
	guest, bin, err := vmmemBuild(ctx, root, dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, _, err := nested.RunVMMem(ctx, as, bin, filepath.Join(guest, guestimage.KernelFile), filepath.Join(guest, guestimage.InitrdFile), p10GuestMiB, dir, nil)
	return res, err
}

// p7 runs the static VMM on the tiny guest and reads the CPU time it had
// used when vCPU 0 entered the guest (its log's first_run_cpu).
func p7(ctx context.Context, vmmBin, kernel string) (stats, error) {
	re := regexp.MustCompile(`first_run_cpu=(\S+)`)
	var ms []float64
	for i := 0; i < 11; i++ {
		cmd := exec.CommandContext(ctx, vmmBin, "--kernel", kernel, "--mem", "128M", "--serial", os.DevNull, "--timeout", "50ms")
		out, _ := cmd.CombinedOutput() // stopped by --timeout: exit 3
		m := re.FindSubmatch(out)
		if m == nil {
			return stats{}, fmt.Errorf("no first_run_cpu in the VMM's log: %s", out)
		}
		d, err := time.ParseDuration(string(m[1]))
		if err != nil || d == 0 {
			return stats{}, fmt.Errorf("first_run_cpu %q: %v", m[1], err)
		}
		if i > 0 { // the first run warms the page cache
			ms = append(ms, float64(d.Microseconds())/1000)
		}
	}
	return summarize(ms), nil
}

// p8 starts a VMM running the tiny (halted) guest, lets it settle, and
// reads its smaps: total RSS, and the RSS of the guest RAM mapping (the
// anonymous mapping of exactly the guest's size; the largest-RSS one if
// several).
func p8(ctx context.Context, kernel, bin string, args ...string) (vmmMem, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return vmmMem{}, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}()
	time.Sleep(2 * time.Second)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid))
	if err != nil {
		return vmmMem{}, fmt.Errorf("%v (output: %s)", err, out.String())
	}
	var m vmmMem
	guest, found := 0, false
	size, rss := 0, 0
	flush := func() {
		if size == p8GuestMiB*1024 {
			guest, found = max(guest, rss), true
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Size:":
			size, _ = strconv.Atoi(f[1])
		case "Rss:":
			rss, _ = strconv.Atoi(f[1])
			m.TotalRSSKiB += rss
			flush()
		}
	}
	if !found {
		return m, fmt.Errorf("no %d MiB mapping in %s's smaps", p8GuestMiB, filepath.Base(bin))
	}
	m.GuestRSSKiB, m.OtherKiB = guest, m.TotalRSSKiB-guest
	return m, nil
}

// tinyBzImage is a bzImage (boot protocol 2.15, 64-bit entry) whose every
// entry point is `1: hlt; jmp 1b` (f4 eb fd, the same bytes in 16-, 32- and
// 64-bit code): the real-mode setup entry QEMU's firmware jumps to (after
// the header, where the jump at 0x200 lands), the 32-bit entry at the
// start of the protected-mode code and the 64-bit one at +0x200 that husk
// enters. The guest halts with interrupts off and stays there: a VMM with
// a guest that costs it nothing.
func tinyBzImage() []byte {
	const setupSects = 4
	loop := []byte{0xf4, 0xeb, 0xfd}
	b := make([]byte, (setupSects+1)*512+0x1000)
	le := binary.LittleEndian
	b[0x1f1] = setupSects
	le.PutUint16(b[0x1fe:], 0xaa55)
	b[0x200], b[0x201] = 0xeb, 0x6a      // jmp to 0x26c, the end of the 2.15 header
	le.PutUint32(b[0x202:], 0x53726448)  // "HdrS"
	le.PutUint16(b[0x206:], 0x020f)      // protocol 2.15
	b[0x211] = 0x01                      // LOADED_HIGH
	le.PutUint32(b[0x214:], 0x100000)    // code32_start
	le.PutUint32(b[0x22c:], 0x7fff_ffff) // initrd_addr_max
	le.PutUint32(b[0x230:], 0x20_0000)   // kernel_alignment
	b[0x234] = 1                         // relocatable
	le.PutUint16(b[0x236:], 0x1|0x2)     // XLF_KERNEL_64, XLF_CAN_BE_LOADED_ABOVE_4G
	le.PutUint32(b[0x238:], 2047)        // cmdline_size
	le.PutUint64(b[0x258:], 0x100_0000)  // pref_address
	le.PutUint32(b[0x260:], 0x40_0000)   // init_size
	copy(b[0x26c:], loop)
	k := b[(setupSects+1)*512:]
	copy(k, loop)
	copy(k[0x200:], loop)
	return b
}

func printVMMTable(r *vmmResult) {
	if r == nil {
		return
	}
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	fmt.Println()
	fmt.Println("| id | what | QEMU microvm | husk | husk/QEMU | target |")
	fmt.Println("|---|---|---|---|---|---|")
	if r.P7 != nil && r.P7Nested != nil {
		fmt.Printf("| P7 | VMM process start → first KVM_RUN, CPU ms (user+sys), guest image, the virt handler's VMM process, nested: median (p90) of %d ÷ the outer guest's slowdown (%.1f×) | — | %.2f ms (%.2f); %.1f ms in the outer guest | — | ≤ 8 CPU ms |\n",
			p7Runs, r.P7Slowdown, r.P7.Median, r.P7.P90, r.P7Nested.Median)
	} else {
		fmt.Printf("| P7 | VMM process start → first KVM_RUN, CPU ms, guest image | — | not measured: %s | — | ≤ 8 CPU ms |\n", r.Errors["P7/P8"])
	}
	if r.P7NestedTiny != nil {
		fmt.Printf("| P7 | the same process in the outer guest with the tiny halted guest (no initrd): the guest image's kernel and initrd add the difference | — | %.1f ms there (guest image %.1f ms) | — | — |\n",
			r.P7NestedTiny.Median, r.P7Nested.Median)
	}
	if r.P7Tiny != nil {
		fmt.Printf("| P7 | the same, halted tiny guest, static VMM command, this host's KVM, median (p90) of 10 | — | %.2f ms (%.2f) | — | — |\n", r.P7Tiny.Median, r.P7Tiny.P90)
	}
	p8Row := func(m map[string]vmmMem, what, errKey string) {
		h, hok := m["husk"]
		q, qok := m["qemu microvm"]
		cell := func(m vmmMem, ok bool) string {
			if !ok {
				return "not measured: " + r.Errors[errKey]
			}
			return fmt.Sprintf("%.1f MiB (%.1f total, guest RAM %.1f)", mib(m.OtherKiB), mib(m.TotalRSSKiB), mib(m.GuestRSSKiB))
		}
		ratio := "—"
		if hok && qok {
			ratio = fmt.Sprintf("%.2f", float64(h.OtherKiB)/float64(q.OtherKiB))
		}
		fmt.Printf("| P8 | VMM RSS without guest RAM, %d MiB guest, %s | %s | %s | %s | ≤ 5 MiB and < QEMU |\n", p8GuestMiB, what, cell(q, qok), cell(h, hok), ratio)
	}
	p8Row(r.P8, "guest image with its agent up, the virt handler's VMM process, nested", "P7/P8")
	if r.P8Tiny != nil {
		p8Row(r.P8Tiny, "halted tiny guest, this host's KVM", "P8 tiny husk")
	}
	if n := r.P9; n != nil {
		up := func(vmm string) float64 {
			if len(n.InnerUptime[vmm]) == 0 {
				return 0
			}
			return summarize(n.InnerUptime[vmm]).Median
		}
		h := n.median("husk")
		for _, q := range []struct{ key, what, target string }{{"qemu", "as shipped", "—"}, {"qemu-tuned", "tuned (" + nested.P9TunedQEMU + ", PVH vmlinux)", "≤ 0.8"}} {
			if n.median(q.key) == 0 {
				fmt.Printf("| P9 | nested harness: boot to inner `/init`, QEMU %s | not measured: %s | %.2f s | — | %s |\n", q.what, r.Errors["P9 "+q.key], h, q.target)
				continue
			}
			fmt.Printf("| P9 | nested harness: VMM exec → inner `/init` (outer guest's clock), median of %d/%d interleaved, QEMU %s | %.2f s | %.2f s | %.2f | %s |\n",
				len(n.ToInit["husk"]), len(n.ToInit[q.key]), q.what, n.median(q.key), h, h/n.median(q.key), q.target)
			fmt.Printf("| P9 | nested harness: the inner guest's own uptime at `/init`, QEMU %s | %.2f s | %.2f s | %.2f | — |\n",
				q.what, up(q.key), up("husk"), up("husk")/up(q.key))
		}
	} else {
		fmt.Printf("| P9 | nested harness: boot to inner `/init` | — | not measured: %s | — | ≤ 0.8 |\n", r.Errors["P9"])
	}
	hm, hok := r.P10["builtin"]
	qm, qok := r.P10["qemu-microvm"]
	if hok && qok {
		h, q := hm.OverheadPSSKiB(), qm.OverheadPSSKiB()
		fmt.Printf("| P10 | VM pod memory: the VMM process's PSS less guest RAM, guest image booted (%d MiB), agent answering, nested harness; VMM only (the shim: P2) | %.1f MiB | %.1f MiB | %.2f | ≤ 20 MiB and ≤ 0.5 |\n",
			p10GuestMiB, mib(int(q)), mib(int(h)), float64(h)/float64(q))
	} else {
		fmt.Printf("| P10 | VM pod memory: VMM PSS less guest RAM | — | not measured: %s | — | ≤ 20 MiB and ≤ 0.5 |\n", r.Errors["P10"])
	}
	printP12Row(r)
	printNestedPodsTable(r.NestedPods, r.Errors["nested CRI pods"])
}

// p9 runs the nested harness with its P9 part (test/nested): the usual
// husk boot and verdict, then the inner kernel and initrd under husk's VMM,
// QEMU microvm as shipped and QEMU microvm tuned (PVH boot of the
// uncompressed kernel), p9Runs times each, interleaved, in the same outer
// VM. A VMM's failed boots go into r.Errors["P9 <vmm>"].
func p9(ctx context.Context, root, dir, vmmBin string, r *vmmResult) (*nestedBoot, error) {
	as, err := nested.FindAssets(root)
	if err != nil {
		return nil, err
	}
	probe := filepath.Join(dir, "vsockprobe")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", probe, "./test/nested/vsockprobe")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build vsockprobe: %v: %s", err, out)
	}
	vmlinux := filepath.Join(dir, "vmlinux")
	if err := extractVmlinux(ctx, as.Kernel.Vmlinuz, vmlinux); err != nil {
		r.Errors["P9 qemu-tuned"] = err.Error()
		vmlinux = ""
	}
	magic := "husk-bench-disk"
	disk := make([]byte, 1<<20)
	copy(disk, magic)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	console, err := nested.Boot(ctx, as, nested.OuterConfig{
		VMM: vmmBin, Disk: disk, DiskMagic: magic, P9: true, P9Runs: p9Runs, P9Vmlinux: vmlinux, P9Tuned: p9Tuned(),
		InnerAppend: "console=ttyS0 reboot=k panic=-1 quiet", InnerArgs: "--mem 256M --cpus 2 --rng --timeout 300s",
	}, probe, dir)
	_ = os.WriteFile(filepath.Join(os.TempDir(), "husk-bench-p9-console.log"), []byte(console), 0o644)
	times, fails := nested.ParseP9(console)
	for _, f := range fails {
		name, msg, _ := strings.Cut(strings.TrimPrefix(f, "HUSK-P9-FAIL: "), ": ")
		if r.Errors["P9 "+name] == "" {
			r.Errors["P9 "+name] = "boot printed no /init line: " + msg
		}
	}
	nb := &nestedBoot{ToInit: map[string][]float64{}, InnerUptime: map[string][]float64{}}
	for vmm, ts := range times {
		for _, t := range ts {
			nb.ToInit[vmm] = append(nb.ToInit[vmm], t.ToInit)
			nb.InnerUptime[vmm] = append(nb.InnerUptime[vmm], t.InnerUptime)
		}
	}
	if err != nil || len(nb.ToInit["husk"]) == 0 || (len(nb.ToInit["qemu"]) == 0 && len(nb.ToInit["qemu-tuned"]) == 0) {
		lines := strings.Split(console, "\n")
		return nil, fmt.Errorf("P9 boots husk %d qemu %d qemu-tuned %d (qemu: %v); console ends:\n%s", len(nb.ToInit["husk"]), len(nb.ToInit["qemu"]),
			len(nb.ToInit["qemu-tuned"]), err, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	return nb, nil
}

// p9Tuned is the tuned QEMU's options, or with HUSK_BENCH_P9_TUNED
// (name=options;name=options) several, to compare tunings.
func p9Tuned() map[string]string {
	env := os.Getenv("HUSK_BENCH_P9_TUNED")
	if env == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(env, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// extractVmlinux writes the uncompressed ELF kernel inside a Debian
// vmlinuz (LZ4, legacy frame: magic 02 21 4c 18) to out, with the lz4
// command (Debian's lz4 package), for QEMU's PVH boot.
func extractVmlinux(ctx context.Context, vmlinuz, out string) error {
	b, err := os.ReadFile(vmlinuz)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte{0x02, 0x21, 0x4c, 0x18})
	if i < 0 {
		return fmt.Errorf("%s: no LZ4 stream (only LZ4-compressed kernels are supported)", vmlinuz)
	}
	lz4, err := exec.LookPath("lz4")
	if err != nil {
		return fmt.Errorf("the tuned QEMU's PVH boot needs the uncompressed kernel: %w (apt-get install lz4)", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, lz4, "-dc")
	var stderr strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(b[i:]), f, &stderr
	_ = cmd.Run() // the bytes after the stream make lz4 exit 1; the ELF check below decides
	if err := f.Sync(); err != nil {
		return err
	}
	e, err := elf.Open(out)
	if err != nil {
		return fmt.Errorf("unpacking %s: %v (lz4: %s)", vmlinuz, err, stderr.String())
	}
	defer e.Close()
	for _, p := range e.Progs {
		if p.Type == elf.PT_NOTE {
			return nil
		}
	}
	return fmt.Errorf("%s's ELF kernel has no notes (no PVH entry)", vmlinuz)
}

// printP12Row prints P12's row of the VMM table.
func printP12Row(r *vmmResult) {
	hb, qb := r.P12["builtin"], r.P12["qemu"]
	if len(hb) == 0 || len(qb) == 0 {
		fmt.Printf("| P12 | VM container: `ctr run` → first output | — | not measured: %s | — | ≤ 0.7 |\n", r.Errors["P12"])
		return
	}
	h, q := summarize(hb), summarize(qb)
	fmt.Printf("| P12 | VM container: `ctr run` → first output, nested harness, median of %d interleaved (QEMU column: husk's qemu backend, q35 + KVM, same guest image) | %.2f s | %.2f s | %.2f | ≤ 0.7 |\n",
		len(hb), q.Median, h.Median, h.Median/q.Median)
}
