package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/test/devenv"
)

// The Wasm side of the bench (shared/TARGETS.md P3, P4, P11): the same
// containerd, images built locally, interleaved runs.

const (
	wasmTinyRef  = "husk.local/bench/wasm-hello-tiny:latest" // /hello.wasm, 144 bytes (testdata/hello.wat)
	wasmGoRef    = "husk.local/bench/wasm-hello-go:latest"   // /hello.wasm, Go wasip1 (examples/wasm/hello)
	wazeroCLIRef = "husk.local/bench/wazero-cli:latest"      // /wazero (static) and the Go hello
	sleepRef     = "husk.local/bench/wasm-sleep:latest"      // /sleep.wasm, idles in poll_oneoff
)

type wasmResult struct {
	// P3: ctr run --rm, ms.
	P3 map[string]stats `json:"p3_ctr_run_rm_ms"`
	// P4: tasks per second, 200 tasks 4 at a time.
	P4 map[string]float64 `json:"p4_tasks_per_second"`
	// P11: 100 idle Wasm containers in one pod.
	P11 wasmDensity `json:"p11_wasm_density"`
}

type wasmDensity struct {
	Running       int     `json:"running_of_100"`
	HostKiBPer    int     `json:"host_memory_kib_per_container"`
	RunnerPSSKiB  int     `json:"runner_pss_kib_per_container"`
	RunnerRSSKiB  int     `json:"runner_rss_kib_per_container"`
	ShimRSSKiB    int     `json:"shim_rss_kib"`
	StartSecs     float64 `json:"seconds_to_start_100"`
	NativeRunning int     `json:"-"`
}

// wasmImages builds and imports the bench's Wasm images; wazeroCLI is the
// static `wazero` binary (go install, `make tools`), "" to skip that
// baseline.
func wasmImages(ctx context.Context, c *devenv.Containerd, dir, wazeroCLI string) error {
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	tiny, goHello, sleep := filepath.Join(dir, "tiny.wasm"), filepath.Join(dir, "go.wasm"), filepath.Join(dir, "sleep.wasm")
	if err := devenv.Wat2Wasm(filepath.Join(root, "test/wasm/testdata/hello.wat"), tiny); err != nil {
		return err
	}
	if err := devenv.Wat2Wasm(filepath.Join(root, "test/wasm/testdata/sleep.wat"), sleep); err != nil {
		return err
	}
	if err := devenv.BuildWasip1("examples/wasm/hello", goHello); err != nil {
		return err
	}
	read := func(p string) []byte {
		b, _ := os.ReadFile(p)
		return b
	}
	cfg := ocispec.ImageConfig{Env: []string{"PATH=/"}, WorkingDir: "/"}
	images := map[string][]devenv.File{
		wasmTinyRef: {{Path: "/hello.wasm", Mode: 0o755, Data: read(tiny)}},
		wasmGoRef:   {{Path: "/hello.wasm", Mode: 0o755, Data: read(goHello)}},
		sleepRef:    {{Path: "/sleep.wasm", Mode: 0o755, Data: read(sleep)}},
	}
	if wazeroCLI != "" {
		images[wazeroCLIRef] = []devenv.File{
			{Path: "/wazero", Mode: 0o755, Data: read(wazeroCLI)},
			{Path: "/hello.wasm", Mode: 0o644, Data: read(goHello)},
			{Path: "/tiny.wasm", Mode: 0o644, Data: read(tiny)},
		}
	}
	for ref, files := range images {
		tarPath := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		if err := devenv.FilesImage(tarPath, ref, files, cfg); err != nil {
			return err
		}
		if err := c.ImportImage(ctx, tarPath, ref); err != nil {
			return err
		}
	}
	return nil
}

// benchWasm measures P3, P4 and P11 for Wasm next to their baselines.
func benchWasm(ctx context.Context, c *devenv.Containerd, dir, tools string, runs int) (*wasmResult, error) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: wat2wasm missing (make tools); skipping the Wasm rows")
		return nil, nil
	}
	if tools == "" {
		root, err := devenv.RepoRoot()
		if err != nil {
			return nil, err
		}
		tools = filepath.Join(root, ".tools", "bin")
	}
	wazeroCLI := filepath.Join(tools, "wazero")
	if _, err := os.Stat(wazeroCLI); err != nil {
		fmt.Fprintln(os.Stderr, "bench: no wazero CLI in", tools, "(make tools); skipping that baseline")
		wazeroCLI = ""
	}
	if err := c.ImportBusybox(ctx, devenv.BusyboxRef); err != nil {
		return nil, err
	}
	if err := wasmImages(ctx, c, dir, wazeroCLI); err != nil {
		return nil, err
	}
	res := &wasmResult{P3: map[string]stats{}, P4: map[string]float64{}}
	cacheDir := filepath.Join(dir, "wazero-cache")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}

	// P3: ctr run --rm, interleaved, three warm-up rounds (which also fill
	// the compilation caches).
	type variant struct {
		name string
		args []string
	}
	variants := []variant{
		{"runc busybox echo", []string{"--runtime", runcRT, devenv.BusyboxRef, "", "echo", "hello"}},
		{"husk busybox echo", []string{"--runtime", huskRT, devenv.BusyboxRef, "", "echo", "hello"}},
		{"husk wasm tiny hello", []string{"--runtime", huskRT, wasmTinyRef, "", "/hello.wasm"}},
		{"husk wasm go hello", []string{"--runtime", huskRT, wasmGoRef, "", "/hello.wasm"}},
	}
	if wazeroCLI != "" {
		mount := []string{"--mount", "type=bind,src=" + cacheDir + ",dst=/cache,options=rbind:rw"}
		variants = append(variants,
			variant{"runc wazero CLI tiny hello", append(mount, "--runtime", runcRT, wazeroCLIRef, "", "/wazero", "run", "-cachedir=/cache", "/tiny.wasm")},
			variant{"runc wazero CLI go hello", append(mount, "--runtime", runcRT, wazeroCLIRef, "", "/wazero", "run", "-cachedir=/cache", "/hello.wasm")})
	}
	times := map[string][]float64{}
	for i := -3; i < runs; i++ {
		if i%2 != 0 {
			slices.Reverse(variants)
		}
		for j, v := range variants {
			args := slices.Clone(v.args)
			args[slices.Index(args, "")] = fmt.Sprintf("p3-%d-%d", j, i+3)
			t0 := time.Now()
			if _, stderr, err := c.Ctr(ctx, append([]string{"run", "--rm"}, args...)...); err != nil {
				return nil, fmt.Errorf("P3 %s: %v: %s", v.name, err, stderr)
			}
			if i >= 0 {
				times[v.name] = append(times[v.name], float64(time.Since(t0).Microseconds())/1000)
			}
		}
	}
	for k, ts := range times {
		res.P3[k] = summarize(ts)
	}

	// P4: 200 tasks, 4 at a time, through the Go client.
	cl, err := containerd.New(c.Address(), containerd.WithDefaultNamespace(c.Namespace))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	nctx := namespaces.WithNamespace(ctx, c.Namespace)
	// The grouped rows share one shim among the tasks (io.husk.group),
	// as containerd's runc shim can with io.containerd.runc.v2.group.
	for _, p := range []struct {
		name, rt, ref string
		args          []string
		group         string
	}{
		{"runc busybox echo", runcRT, devenv.BusyboxRef, []string{"echo", "hello"}, ""},
		{"husk wasm tiny hello", huskRT, wasmTinyRef, []string{"/hello.wasm"}, ""},
		{"husk wasm go hello", huskRT, wasmGoRef, []string{"/hello.wasm"}, ""},
		{"husk busybox echo", huskRT, devenv.BusyboxRef, []string{"echo", "hello"}, ""},
		{"husk wasm tiny hello, one group", huskRT, wasmTinyRef, []string{"/hello.wasm"}, "p4-tiny"},
		{"husk busybox echo, one group", huskRT, devenv.BusyboxRef, []string{"echo", "hello"}, "p4-busybox"},
	} {
		tps, err := throughput(nctx, cl, p.rt, p.ref, p.args, p.group, 200, 4)
		if err != nil {
			return nil, fmt.Errorf("P4 %s: %w", p.name, err)
		}
		res.P4[p.name] = tps
	}

	d, err := wasmDensityRun(ctx, c)
	if err != nil {
		return nil, err
	}
	res.P11 = d
	return res, nil
}

// throughput runs n tasks of args in image ref on runtime rt, par at a
// time, each created, started, waited for and deleted with the Go client,
// and returns tasks per second. A group puts them in one io.husk.group.
func throughput(ctx context.Context, cl *containerd.Client, rt, ref string, args []string, group string, n, par int) (float64, error) {
	img, err := cl.GetImage(ctx, ref)
	if err != nil {
		return 0, err
	}
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs(args...)}
	if group != "" {
		specOpts = append(specOpts, oci.WithAnnotations(map[string]string{runtime.AnnotationGroup: group}))
	}
	one := func(id string) error {
		ctr, err := cl.NewContainer(ctx, id, containerd.WithNewSnapshot(id, img),
			containerd.WithNewSpec(specOpts...), containerd.WithRuntime(rt, nil))
		if err != nil {
			return err
		}
		defer ctr.Delete(ctx, containerd.WithSnapshotCleanup)
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err != nil {
			return err
		}
		defer task.Delete(ctx, containerd.WithProcessKill)
		ch, err := task.Wait(ctx)
		if err != nil {
			return err
		}
		if err := task.Start(ctx); err != nil {
			return err
		}
		if st := <-ch; st.ExitCode() != 0 {
			return fmt.Errorf("%s exited %d", id, st.ExitCode())
		}
		return nil
	}
	ids := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := one(id); err != nil {
					errs <- err
				}
			}
		}()
	}
	tag := strings.NewReplacer("/", "-", ":", "-", ".", "-").Replace(ref)
	if group != "" {
		tag += "-" + group
	}
	for i := 0; i < n; i++ {
		ids <- fmt.Sprintf("p4-%s-%s-%d", short(rt), tag, i)
	}
	close(ids)
	wg.Wait()
	el := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / el.Seconds(), nil
}

// wasmDensityRun starts 100 idle Wasm containers in one husk pod and
// measures the host's memory per container and the runners' own.
func wasmDensityRun(ctx context.Context, c *devenv.Containerd) (wasmDensity, error) {
	var d wasmDensity
	sb := "pod-wasm"
	var ids []string
	defer func() {
		for _, id := range ids {
			killTask(ctx, c, id)
		}
		for i := len(ids) - 1; i >= 0; i-- {
			removeContainer(ctx, c, ids[i])
		}
	}()
	free0 := memAvailable()
	t0 := time.Now()
	for n := 1; n <= 100; n++ {
		id := sb
		if n > 1 {
			id = fmt.Sprintf("%s-%d", sb, n)
		}
		args := append([]string{"run", "-d", "--runtime", huskRT}, podArgs(sb, n == 1)...)
		ref, prog := sleepRef, "/sleep.wasm"
		if n == 1 {
			ref, prog = devenv.BusyboxRef, "sleep" // the pod's (native) sandbox container
		}
		cl := append(args, ref, id, prog)
		if n == 1 {
			cl = append(cl, "100000")
		}
		if _, stderr, err := c.Ctr(ctx, cl...); err != nil {
			return d, fmt.Errorf("P11 wasm: %s: %v: %s", id, err, stderr)
		}
		ids = append(ids, id)
	}
	d.StartSecs = time.Since(t0).Seconds()
	time.Sleep(3 * time.Second)
	d.HostKiBPer = (free0 - memAvailable()) / 99
	out, _, err := c.Ctr(ctx, "task", "ls")
	if err != nil {
		return d, err
	}
	d.Running = strings.Count(out, "RUNNING") - 1 // less the sandbox container
	var rss, pss, count int
	for _, p := range runnerPids() {
		m := readMem(p)
		rss, pss, count = rss+m.RSSKiB, pss+m.PSSKiB, count+1
	}
	if count > 0 {
		d.RunnerRSSKiB, d.RunnerPSSKiB = rss/count, pss/count
	}
	if pid, err := shimPid(sb); err == nil {
		d.ShimRSSKiB = readMem(pid).RSSKiB
	}
	return d, nil
}

// runnerPids lists the Wasm runners' processes.
func runnerPids() []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(strings.SplitN(string(b), "\x00", 2)[0], "wasm-runner") {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
		if syscall.Kill(pid, 0) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func printWasmTable(r *wasmResult) {
	if r == nil {
		return
	}
	base := r.P3["runc busybox echo"].Median
	fmt.Println()
	fmt.Println("| id | what | median (p90) | ÷ runc busybox echo | target |")
	fmt.Println("|---|---|---|---|---|")
	for _, k := range []string{"runc busybox echo", "husk busybox echo", "husk wasm tiny hello", "husk wasm go hello", "runc wazero CLI tiny hello", "runc wazero CLI go hello"} {
		s, ok := r.P3[k]
		if !ok {
			continue
		}
		target := "—"
		if strings.HasPrefix(k, "husk wasm") {
			target = "≤ 0.8"
		}
		fmt.Printf("| P3 | `ctr run --rm`, %s | %.1f ms (%.1f) | %.2f | %s |\n", k, s.Median, s.P90, s.Median/base, target)
	}
	for _, pair := range [][2]string{{"husk wasm tiny hello", "runc wazero CLI tiny hello"}, {"husk wasm go hello", "runc wazero CLI go hello"}} {
		if a, ok := r.P3[pair[0]]; ok {
			if b, ok := r.P3[pair[1]]; ok {
				fmt.Printf("| P3 | %s ÷ %s | | %.2f | ≤ 0.7 |\n", pair[0], pair[1], a.Median/b.Median)
			}
		}
	}
	rb := r.P4["runc busybox echo"]
	for _, k := range []string{"runc busybox echo", "husk busybox echo", "husk wasm tiny hello", "husk wasm go hello",
		"husk busybox echo, one group", "husk wasm tiny hello, one group"} {
		target := "—"
		if strings.HasPrefix(k, "husk wasm") {
			target = "≥ 2"
		}
		fmt.Printf("| P4 | 200 tasks, 4 at a time, %s | %.1f tasks/s | %.2f | %s |\n", k, r.P4[k], r.P4[k]/rb, target)
	}
	d := r.P11
	fmt.Printf("| P11 | 99 idle Wasm containers in one pod (with its native sandbox): running | %d | | all 99 |\n", d.Running)
	fmt.Printf("| P11 | host memory per Wasm container (MemAvailable drop / 99) | %.2f MiB | | reported |\n", float64(d.HostKiBPer)/1024)
	fmt.Printf("| P11 | runner RSS (PSS) per Wasm container | %.2f MiB (%.2f) | | reported |\n", float64(d.RunnerRSSKiB)/1024, float64(d.RunnerPSSKiB)/1024)
	fmt.Printf("| P11 | shim RSS with 100 Wasm containers | %.1f MiB | | — |\n", float64(d.ShimRSSKiB)/1024)
	fmt.Printf("| P11 | time to start 100 Wasm containers one after another | %.1f s | | — |\n", d.StartSecs)
}
