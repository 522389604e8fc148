package nested

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ContainerdResult is one containerd run.
type ContainerdResult struct {
	Console    string        // the outer guest's serial console
	Verdict    string        // after "HUSK-CTR-VERDICT: ", "" when none was printed
	Wall       time.Duration // QEMU's run, start to exit
	InitrdSize int           // bytes of the outer initrd
	// Frozen says QEMU was ended because the outer guest had stopped
	// running (see runQEMUWatched).
	Frozen bool
	// ClockJump says how the outer guest's clock leapt ahead of the
	// host's, "" when it did not (see clockWatch).
	ClockJump string
}

// Passed reports whether the scenario passed.
func (r *ContainerdResult) Passed() bool { return r.Verdict == verdictPass }

// Lines returns the console's lines that the harness and the scenario's
// helpers printed ("HUSK-CTR: ..."), for a test's log.
func (r *ContainerdResult) Lines() []string {
	var out []string
	for _, l := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(ctrMarker)+`.*$`).FindAllString(r.Console, -1) {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// RunContainerd builds the outer initrd of c into dir (Busybox and Kernel
// come from as when unset), boots it with ContainerdMemMiB of memory until
// the guest powers off or ctx ends, and returns the console; tee, when not
// nil, sees the console as it comes. The error is QEMU's (or the build's);
// the scenario's outcome is the result's Verdict.
func RunContainerd(ctx context.Context, as *Assets, c ContainerdConfig, dir string, tee io.Writer) (*ContainerdResult, error) {
	if c.Busybox == nil {
		c.Busybox = as.Busybox
	}
	if c.Kernel == nil {
		c.Kernel = as.Kernel
	}
	initrd, err := ContainerdOuterInitrd(c)
	if err != nil {
		return nil, err
	}
	outerPath := filepath.Join(dir, "containerd-outer.cpio")
	if err := os.WriteFile(outerPath, initrd, 0o644); err != nil {
		return nil, err
	}
	r := &ContainerdResult{InitrdSize: len(initrd)}
	var console bytes.Buffer
	clock := newClockWatch()
	var out io.Writer = io.MultiWriter(&console, clock)
	if tee != nil {
		out = io.MultiWriter(&console, clock, tee)
	}
	start := time.Now()
	r.Frozen, err = runQEMUWatched(ctx, as.QEMU, QEMUArgs(c.Kernel.Vmlinuz, outerPath, "console=ttyS0 panic=-1 quiet", ContainerdMemMiB), out)
	r.Wall = time.Since(start)
	r.Console = console.String()
	r.ClockJump = clock.Jump()
	_ = os.WriteFile(filepath.Join(dir, "containerd-console.log"), console.Bytes(), 0o644)
	if m := regexp.MustCompile(regexp.QuoteMeta(ctrVerdict) + `(.*)`).FindStringSubmatch(r.Console); m != nil {
		r.Verdict = strings.TrimSpace(m[1])
	}
	return r, err
}

// A frozen outer guest: QEMU's TCG has been seen to stop the whole outer
// guest while husk's VMM ran a guest in it (nested SVM), its vCPU thread
// halted for good and not even the guest's own timers firing, so neither
// the scenario's watchdog nor anything else in it ran again
// (TestNestedBoot met the same, once in about a dozen runs under load).
// A scenario keeps the guest busy, so a guest that uses less than
// frozenCPU of QEMU's CPU time and prints nothing for frozenAfter has
// frozen. (Variables for the test.)
var (
	frozenAfter = 45 * time.Second
	frozenCPU   = 500 * time.Millisecond
	frozenTick  = 5 * time.Second // how often QEMU is looked at
)

// runQEMUWatched is RunQEMU, but it also kills QEMU once the outer guest
// has frozen, and then says so.
func runQEMUWatched(ctx context.Context, qemu string, args []string, out io.Writer) (frozen bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cw := &countingWriter{w: out}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdout, cmd.Stderr = cw, cw
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("qemu: %w", err)
	}
	var isFrozen atomic.Bool
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(frozenTick)
		defer tick.Stop()
		pid := cmd.Process.Pid
		cpu, printed, since := cpuTime(pid), cw.n.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if c, n := cpuTime(pid), cw.n.Load(); c-cpu >= frozenCPU || n != printed {
				cpu, printed, since = c, n, time.Now()
				continue
			}
			if time.Since(since) >= frozenAfter {
				isFrozen.Store(true)
				cancel()
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	switch {
	case isFrozen.Load():
		return true, fmt.Errorf("qemu: the outer guest froze (no output and under %v of CPU time in %v)", frozenCPU, frozenAfter)
	case err != nil && ctx.Err() != nil:
		return false, fmt.Errorf("qemu: %w (%w)", ctx.Err(), err)
	case err != nil:
		return false, fmt.Errorf("qemu: %w", err)
	}
	return false, nil
}

// cpuTime is process pid's user and system time so far, 0 when unknown.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ...: utime and stime are fields 14 and 15, the
	// 12th and 13th after comm.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
