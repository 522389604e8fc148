package main

// P11's pod row (shared/TARGETS.md): p11Pods single-container pods at
// once, each its own pod and so its own shim (the container is its pod's
// sandbox, annotated as the CRI does), an idle busybox sleep, on runc and
// on husk, one runtime after the other in the same containerd. It counts
// those running once all are started and what the host paid per pod: the
// drop of MemAvailable, and the PSS of each pod's shim with its container
// (the verdict wants both at most runc's: MemAvailable sees the kernel's
// share too but moves with everything else on the machine).
// Starts run p11Workers at a time; the whole row is bounded by p11Budget
// per runtime.
//
//	go run ./test/bench --p11-only

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

const (
	p11Pods    = 250
	p11Workers = 4
	p11Budget  = 6 * time.Minute
)

var p11Only = flag.Bool("p11-only", false, "measure only P11's 250-pod row (pods250.go)")

// p11Result is the 250-pod row.
type p11Result struct {
	Pods     int                   `json:"pods"`
	Runtimes map[string]p11Runtime `json:"runtimes"`
	Err      string                `json:"error,omitempty"`
}

type p11Runtime struct {
	Running       int     `json:"running"`
	HostKiBPerPod int     `json:"host_memory_kib_per_pod"`
	PSSKiBPerPod  int     `json:"shim_and_container_pss_kib_per_pod"`
	StartSecs     float64 `json:"seconds_to_start_all"`
	CleanupSecs   float64 `json:"seconds_to_remove_all"`
}

// benchP11 measures runc, then husk; it reports a failure in the result
// (the rest of the bench goes on).
func benchP11(ctx context.Context, c *devenv.Containerd, rootfs string) *p11Result {
	res := &p11Result{Pods: p11Pods, Runtimes: map[string]p11Runtime{}}
	for _, rt := range []string{runcRT, huskRT} {
		r, err := pods250(ctx, c, rt, rootfs, p11Pods)
		res.Runtimes[short(rt)] = r
		if err != nil {
			res.Err = fmt.Sprintf("%s: %v", short(rt), err)
			break
		}
	}
	return res
}

// pods250 starts n one-container pods on rt, measures them and removes
// them all, whatever happened.
func pods250(ctx context.Context, c *devenv.Containerd, rt, rootfs string, n int) (r p11Runtime, err error) {
	ctx, cancel := context.WithTimeout(ctx, p11Budget)
	defer cancel()
	if err := evictShimBinary(c, rt); err != nil { // as density does
		return r, err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p11-%s-%d", short(rt), i)
	}
	// each runs f on every id, p11Workers at a time, and returns the
	// first error.
	each := func(f func(id string) error) error {
		var (
			mu    sync.Mutex
			first error
			wg    sync.WaitGroup
		)
		next := make(chan string)
		for range p11Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range next {
					if err := f(id); err != nil {
						mu.Lock()
						first = cmpOr(first, err)
						mu.Unlock()
					}
				}
			}()
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		return first
	}
	defer func() {
		t0 := time.Now()
		// Cleanup outlives the budget: a pod left behind would skew
		// every later row.
		cctx := context.WithoutCancel(ctx)
		_ = each(func(id string) error {
			killTask(cctx, c, id)
			removeContainer(cctx, c, id)
			return nil
		})
		r.CleanupSecs = time.Since(t0).Seconds()
	}()

	free0 := memAvailable()
	t0 := time.Now()
	err = each(func(id string) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s not started: %w (budget %s)", id, ctx.Err(), p11Budget)
		}
		args := append([]string{"run", "-d", "--runtime", rt, "--rootfs", rootfs}, podArgs(id, true)...)
		if _, stderr, err := c.Ctr(ctx, append(args, id, "/bin/sleep", "100000")...); err != nil {
			return fmt.Errorf("%s: %v: %s", id, err, stderr)
		}
		return nil
	})
	r.StartSecs = time.Since(t0).Seconds()
	time.Sleep(3 * time.Second) // let the shims' heaps settle
	r.HostKiBPerPod = (free0 - memAvailable()) / n
	out, _, lerr := c.Ctr(ctx, "task", "ls")
	if lerr == nil {
		r.Running = countRunning(out, ids)
	}
	pss := 0
	for _, id := range ids {
		if pid, perr := shimPid(id); perr == nil {
			pss += treePSSKiB(pid)
		}
	}
	r.PSSKiBPerPod = pss / n
	return r, errors.Join(err, lerr)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// countRunning counts the tasks of ids that `ctr task ls` (out) lists as
// RUNNING.
func countRunning(out string, ids []string) int {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && want[f[0]] && f[2] == "RUNNING" {
			n++
			want[f[0]] = false
		}
	}
	return n
}

// printP11Table prints the 250-pod row's details.
func printP11Table(p *p11Result) {
	if p == nil {
		return
	}
	fmt.Println()
	if p.Err != "" {
		fmt.Printf("P11, %d pods: %s\n", p.Pods, p.Err)
	}
	h, rc := p.Runtimes["husk"], p.Runtimes["runc"]
	fmt.Println("| id | what | runc shim | husk | husk/runc |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| P11 | %d single-container pods (a shim each) at once: running | %d | %d | — |\n", p.Pods, rc.Running, h.Running)
	fmt.Printf("| P11 | host memory per pod (MemAvailable drop / %d) | %.2f MiB | %.2f MiB | %s |\n", p.Pods, mibOf(rc.HostKiBPerPod), mibOf(h.HostKiBPerPod),
		fmtRatio(float64(h.HostKiBPerPod), float64(rc.HostKiBPerPod)))
	fmt.Printf("| P11 | PSS of a pod's shim and container | %.2f MiB | %.2f MiB | %s |\n", mibOf(rc.PSSKiBPerPod), mibOf(h.PSSKiBPerPod),
		fmtRatio(float64(h.PSSKiBPerPod), float64(rc.PSSKiBPerPod)))
	fmt.Printf("| P11 | time to start all, %d at a time; to remove all | %.0f s; %.0f s | %.0f s; %.0f s | %s |\n", p11Workers,
		rc.StartSecs, rc.CleanupSecs, h.StartSecs, h.CleanupSecs, fmtRatio(h.StartSecs, rc.StartSecs))
}
