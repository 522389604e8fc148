package main

// Issue #11's pod rows on husk's own VMM: the CRI pod benchmark of
// pods.go (crictl runp + create + start of one idle busybox container
// until it runs; the PSS of the pod's host processes), in the nested-KVM
// harness's outer guest (test/nested's containerd run with the CRI), the
// only place here where husk's VMM runs Linux. runc and husk's qemu
// backend (with the outer guest's KVM) are measured in the same outer
// guest, pods interleaved, as the baseline. The outer guest is itself
// emulated by QEMU TCG: its numbers compare with each other, as ratios,
// not with the host's rows.
//
//	HUSK_BENCH_ONLY=nestedpods go run ./test/bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/test/nested"
)

// nestedPodRuns is how many pods each handler starts.
const nestedPodRuns = 3

// nestedPodQEMUHandler is the CRI handler of husk's qemu backend in the
// outer guest (KVM there, vhost-vsock).
const nestedPodQEMUHandler = "husk-vm-qemu"

// nestedPodHandlers are the handlers measured, in each round's order.
var nestedPodHandlers = []string{"runc", nested.CRIVMHandler, nestedPodQEMUHandler}

// nestedPodMarker starts each measurement line on the outer console:
// "HUSK-NPOD: <handler> start <uptime> running <uptime> pss <KiB> vmm <KiB>".
const nestedPodMarker = "HUSK-NPOD: "

// nestedPodScenario starts the pods one at a time, each measured and
// removed before the next; the uptimes are the outer guest's.
var nestedPodScenario = fmt.Sprintf(`
C=/etc/husk-nested/bench
# tree_pss PID: the PSS (KiB) of PID and all its descendants.
tree_pss() {
  for s in /proc/[0-9]*/stat; do cat $s 2>/dev/null; echo; done |
    awk -v root=$1 'NF > 4 { kids[$4] = kids[$4] " " $1 }
      END { todo = root; while (todo != "") { n = split(todo, a, " "); todo = ""; for (i = 1; i <= n; i++) { print a[i]; todo = todo " " kids[a[i]] } } }' |
    while read p; do awk '/^Pss:/ { print $2 }' /proc/$p/smaps_rollup 2>/dev/null; done |
    awk '{ s += $1 } END { print s + 0 }'
}
pod_shim() { cmdlines | grep "[c]ontainerd-shim-[a-z0-9-]* .*-id $1 " | grep -v -e ' start $' -e ' delete $' | cut -d' ' -f1; }
# (run, not i: the library's wait loops count in i.)
for run in %[1]s; do
  for h in %[2]s; do
    t0=$(up)
    pod=$(crictl runp --runtime $h $C/pod-$h-$run.json 2> /tmp/runp.err) || { fail "$h: crictl runp: $(cat /tmp/runp.err)"; continue; }
    c=$(crictl create --no-pull "$pod" $C/idle.json $C/pod-$h-$run.json 2> /tmp/create.err) || fail "$h: crictl create: $(cat /tmp/create.err)"
    crictl start "$c" > /dev/null 2> /tmp/start.err || fail "$h: crictl start: $(cat /tmp/start.err)"
    if cri_wait_running "$c"; then
      t1=$(up)
      sleep 3
      shim=$(pod_shim $pod)
      vmm=0
      for v in $(cmdlines | grep -e "^[0-9]* [h]usk-vmm vmm " -e "^[0-9]* [^ ]*[q]emu-system-x86_64 " | cut -d' ' -f1); do
        vmm=$((vmm + $(awk '/^Pss:/ { print $2 }' /proc/$v/smaps_rollup)))
      done
      [ -n "$shim" ] && echo "%[3]s$h start $t0 running $t1 pss $(tree_pss $shim) vmm $vmm" || fail "$h: no shim for pod $pod"
    fi
    crictl stopp "$pod" > /dev/null || fail "$h: crictl stopp"
    crictl rmp "$pod" > /dev/null || fail "$h: crictl rmp"
  done
done
cri_check_clean
`, p12Iterations(nestedPodRuns), strings.Join(nestedPodHandlers, " "), nestedPodMarker)

// nestedPodsResult is the nested CRI pod rows, by handler.
type nestedPodsResult struct {
	Runs int `json:"pods_per_handler"`
	// ReadySecs: crictl runp + create + start until running, seconds of
	// the outer guest's clock.
	ReadySecs map[string]stats `json:"ready_secs"`
	// PodPSSKiB: the median PSS of the pod's shim and all under it.
	PodPSSKiB map[string]int `json:"pod_processes_pss_kib"`
	// VMMPSSKiB: the median PSS of the pod's VMM process (husk's or QEMU).
	VMMPSSKiB map[string]int `json:"vmm_pss_kib"`
	WallSecs  float64        `json:"outer_guest_wall_secs"`
}

func init() {
	if os.Getenv("HUSK_BENCH_ONLY") != "nestedpods" {
		return
	}
	dir, err := os.MkdirTemp("", "hbench-nestedpods")
	var r *nestedPodsResult
	if err == nil {
		var root string
		if root, err = devenv.RepoRoot(); err == nil {
			r, err = nestedPods(context.Background(), root, dir)
		}
		os.RemoveAll(dir)
	}
	if err != nil {
		printNestedPodsTable(nil, err.Error())
		fmt.Fprintln(os.Stderr, "bench: nested CRI pods:", err)
		os.Exit(1)
	}
	printNestedPodsTable(r, "")
	os.Exit(0)
}

// nestedPods runs the nested CRI pod rows.
func nestedPods(ctx context.Context, root, dir string) (*nestedPodsResult, error) {
	as, err := nested.FindAssets(root)
	if err != nil {
		return nil, err
	}
	tools, err := nested.FindContainerdTools(root)
	if err != nil {
		return nil, err
	}
	cri, err := nested.FindCRI(root, dir, true)
	if err != nil {
		return nil, err
	}
	cri.Handlers = map[string]string{nestedPodQEMUHandler: strings.Replace(nested.CRIVMHuskConfig,
		`hypervisor = "builtin"`, `hypervisor = "qemu"`, 1) + "\n[virt.qemu]\nbinary = \"/usr/bin/qemu-system-x86_64\"\naccel = \"kvm\"\n"}
	guest, err := nested.BuildGuestImage(ctx, root, dir)
	if err != nil {
		return nil, err
	}
	shim := filepath.Join(dir, "containerd-shim-husk-v2")
	if err := nested.BuildShim(ctx, root, shim); err != nil {
		return nil, err
	}
	image := filepath.Join(dir, "busybox.tar")
	if err := devenv.BusyboxImage(image, nested.ContainerdImageRef); err != nil {
		return nil, err
	}
	files, err := nestedPodFiles()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	r, err := nested.RunContainerd(ctx, as, nested.ContainerdConfig{
		Tools: tools, Shim: shim, Image: image, QEMU: as.QEMU, CRI: cri, Files: files,
		GuestKernel:     filepath.Join(guest, guestimage.KernelFile),
		GuestInitrd:     filepath.Join(guest, guestimage.InitrdFile),
		GuestManifest:   filepath.Join(guest, guestimage.ManifestFile),
		ScenarioTimeout: 17 * time.Minute,
		Scenario:        nestedPodScenario,
	}, dir, nil)
	if err != nil {
		return nil, err
	}
	res := &nestedPodsResult{Runs: nestedPodRuns, ReadySecs: map[string]stats{}, PodPSSKiB: map[string]int{}, VMMPSSKiB: map[string]int{},
		WallSecs: r.Wall.Seconds()}
	ready, pss, vmm := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	re := regexp.MustCompile(regexp.QuoteMeta(nestedPodMarker) + `(\S+) start (\S+) running (\S+) pss (\d+) vmm (\d+)`)
	for _, m := range re.FindAllStringSubmatch(r.Console, -1) {
		t0, _ := strconv.ParseFloat(m[2], 64)
		t1, _ := strconv.ParseFloat(m[3], 64)
		p, _ := strconv.ParseFloat(m[4], 64)
		v, _ := strconv.ParseFloat(m[5], 64)
		ready[m[1]] = append(ready[m[1]], t1-t0)
		pss[m[1]] = append(pss[m[1]], p)
		vmm[m[1]] = append(vmm[m[1]], v)
	}
	complete := r.Passed()
	for _, h := range nestedPodHandlers {
		if len(ready[h]) != nestedPodRuns {
			complete = false
			continue
		}
		res.ReadySecs[h] = summarize(ready[h])
		res.PodPSSKiB[h] = int(summarize(pss[h]).Median)
		res.VMMPSSKiB[h] = int(summarize(vmm[h]).Median)
	}
	if !complete {
		log := filepath.Join(os.TempDir(), "husk-bench-nestedpods-console.log")
		_ = os.WriteFile(log, []byte(r.Console), 0o644)
		return res, fmt.Errorf("nested CRI pods: %d %d %d of %d runs (verdict %q; console in %s)",
			len(ready["runc"]), len(ready[nested.CRIVMHandler]), len(ready[nestedPodQEMUHandler]), nestedPodRuns, r.Verdict, log)
	}
	return res, nil
}

// nestedPodFiles are the pods' and the idle container's configurations,
// by their path in the outer guest (/etc/husk-nested/bench).
func nestedPodFiles() (map[string][]byte, error) {
	ns := map[string]any{"network": 0, "pid": 1, "ipc": 0}
	files := map[string]any{"idle.json": map[string]any{
		"metadata": map[string]any{"name": "idle"},
		"image":    map[string]any{"image": nested.ContainerdImageRef},
		"command":  []string{"sleep", "3600"},
		"log_path": "idle.log",
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": ns}},
	}}
	for _, h := range nestedPodHandlers {
		for i := 1; i <= nestedPodRuns; i++ {
			name := fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(h, "-", ""), i)
			files[fmt.Sprintf("pod-%s-%d.json", h, i)] = map[string]any{
				"metadata":      map[string]any{"name": name, "namespace": "husk-bench", "uid": "uid-" + name},
				"hostname":      name,
				"log_directory": "/var/log/pods/" + name,
				"linux":         map[string]any{"security_context": map[string]any{"namespace_options": ns}},
			}
		}
	}
	out := map[string][]byte{}
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out["etc/husk-nested/bench/"+name] = b
	}
	return out, nil
}

// printNestedPodsTable prints the nested CRI pod rows, or why they were
// not measured.
func printNestedPodsTable(r *nestedPodsResult, notMeasured string) {
	if r == nil {
		fmt.Printf("\nCRI pods in the nested harness: not measured: %s\n", notMeasured)
		return
	}
	rc, vm, q := "runc", nested.CRIVMHandler, nestedPodQEMUHandler
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	fmt.Printf("\nCRI pods in the nested harness's outer guest (QEMU TCG, KVM inside): %d per handler, interleaved, one idle busybox container each; outer guest %.0f s wall.\n\n", r.Runs, r.WallSecs)
	fmt.Println("| what | runc | husk VM pod, husk's VMM | husk VM pod, qemu (KVM) | husk's VMM/runc | husk's VMM/qemu |")
	fmt.Println("|---|---|---|---|---|---|")
	ready, pss, vmm := r.ReadySecs, r.PodPSSKiB, r.VMMPSSKiB
	ratio := func(a, b int) float64 { return float64(a) / float64(max(b, 1)) }
	fmt.Printf("| `crictl runp` + create + start to running, median (p90) | %.2f s (%.2f) | %.2f s (%.2f) | %.2f s (%.2f) | %.1f | %.2f |\n",
		ready[rc].Median, ready[rc].P90, ready[vm].Median, ready[vm].P90, ready[q].Median, ready[q].P90,
		ready[vm].Median/ready[rc].Median, ready[vm].Median/ready[q].Median)
	fmt.Printf("| PSS of a pod's host processes (shim and all under it), median | %.1f MiB | %.1f MiB | %.1f MiB | %.1f | %.2f |\n",
		mib(pss[rc]), mib(pss[vm]), mib(pss[q]), ratio(pss[vm], pss[rc]), ratio(pss[vm], pss[q]))
	fmt.Printf("| of which the VMM process | | %.1f MiB | %.1f MiB | | %.2f |\n", mib(vmm[vm]), mib(vmm[q]), ratio(vmm[vm], vmm[q]))
}
