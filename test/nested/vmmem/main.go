// Command vmmem runs in the nested harness's outer guest, which has a real
// /dev/kvm, and measures P10 (shared/TARGETS.md): what a pod's VM costs
// the host beyond its guest's memory. It boots the guest image (husk's
// kernel and initrd with the agent) twice, one after the other: through
// runtime/virt/builtin, in the confined VMM process the shim runs (this
// binary is that process too, re-executed), and in QEMU microvm with a
// vhost-vsock device. Each is measured at the same point: the agent has
// answered Check over vsock, and the guest has then idled for a settle
// time. Built static with cgo (libseccomp), as the shim is.
//
//	vmmem KERNEL INITRD QEMU MEM_MIB [P7_RUNS [TINY_KERNEL]]
//
// With P7_RUNS it first boots the guest P7_RUNS times more through
// runtime/virt/builtin, each stopped a second after its start, and prints
// the CPU time each VMM process had used when its guest ran its first
// instruction (the process's "vm stopped" log line, first_run_cpu), and
// the CPU time of a process that starts and reads the kernel and
// initrd into fresh memory in a new process of this binary (vmmem ref
// FILE...: a fixed load, to compare this guest's speed with the host's):
//
//	HUSK-VMMEM-P7: first_run_cpu_ms X
//	HUSK-VMMEM-P7-TINY: first_run_cpu_ms X (TINY_KERNEL, no initrd, after each)
//	HUSK-VMMEM-P7-SELF: first_run_cpu_ms X (the guest image in this program
//	                    re-executed, as the shim did before husk-vmm)
//	HUSK-VMMEM-P7-REF: cpu_ms X
//
// It prints one line per VMM,
//
//	HUSK-VMMEM: <vmm> pss_kib N guest_pss_kib N rss_kib N guest_rss_kib N agent_s S
//
// (agent_s: VMM start to the agent's answer), "HUSK-VMMEM-ERROR: ..." for
// what failed, and exits 1 if anything did.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/builtin"
)

const (
	linePrefix  = "HUSK-VMMEM: "
	errorPrefix = "HUSK-VMMEM-ERROR: "
	// params are what the virt handler puts first on a guest's command line.
	params = "console=ttyS0 reboot=k panic=-1 quiet"
	// settle is how long the guest idles after the agent's answer.
	settle = 3 * time.Second
	// qemuCID is the QEMU guest's vsock context id.
	qemuCID = 3
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == builtin.ProcessArg {
		builtin.Main()
	}
	if len(os.Args) > 1 && os.Args[1] == RefArg {
		os.Exit(refMain(os.Args[2:]))
	}
	if len(os.Args) < 5 || len(os.Args) > 7 {
		fmt.Fprintln(os.Stderr, "usage: vmmem KERNEL INITRD QEMU MEM_MIB [P7_RUNS [TINY_KERNEL]]")
		os.Exit(2)
	}
	kernel, initrd, qemu := os.Args[1], os.Args[2], os.Args[3]
	mem, err := strconv.ParseUint(os.Args[4], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	p7Runs := 0
	tiny := ""
	if len(os.Args) == 7 {
		tiny = os.Args[6]
	}
	if len(os.Args) >= 6 {
		if p7Runs, err = strconv.Atoi(os.Args[5]); err != nil || p7Runs < 0 || p7Runs > 50 {
			fmt.Fprintln(os.Stderr, "P7_RUNS: want 0 to 50:", os.Args[5])
			os.Exit(2)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second+time.Duration(p7Runs)*20*time.Second)
	defer cancel()
	failed := false
	for i := 0; i < p7Runs; i++ {
		if i == 0 || i == p7Runs-1 {
			if ref, err := refLoad(kernel, initrd); err != nil {
				fmt.Printf("%sP7 reference: %v\n", errorPrefix, err)
			} else {
				fmt.Printf("%s-REF: cpu_ms %.3f\n", p7Prefix, float64(ref.Microseconds())/1000)
			}
		}
		cpu, err := firstRunCPU(ctx, kernel, initrd, mem, i)
		if err != nil {
			fmt.Printf("%sP7 run %d: %v\n", errorPrefix, i, err)
			failed = true
			break
		}
		fmt.Printf("%s: first_run_cpu_ms %.3f\n", p7Prefix, float64(cpu.Microseconds())/1000)
		if tiny != "" {
			cpu, err := firstRunCPU(ctx, tiny, "", mem, 100+i)
			if err != nil {
				fmt.Printf("%sP7 tiny run %d: %v\n", errorPrefix, i, err)
				failed = true
				break
			}
			fmt.Printf("%s-TINY: first_run_cpu_ms %.3f\n", p7Prefix, float64(cpu.Microseconds())/1000)
		}
		// The same guest image in the shim's way before husk-vmm: this
		// program re-executed (husk-vmm hidden while the hypervisor looks).
		if cpu, err := withoutVMMBinary(func() (time.Duration, error) { return firstRunCPU(ctx, kernel, initrd, mem, 200+i) }); err != nil {
			fmt.Printf("%sP7 self run %d: %v\n", errorPrefix, i, err)
			failed = true
			break
		} else if cpu > 0 {
			fmt.Printf("%s-SELF: first_run_cpu_ms %.3f\n", p7Prefix, float64(cpu.Microseconds())/1000)
		}
	}
	for _, m := range []struct {
		name string
		run  func(context.Context, string, string, uint64) (usage, error)
	}{
		{"builtin", builtinVM},
		{"qemu-microvm", func(ctx context.Context, k, i string, mem uint64) (usage, error) { return qemuVM(ctx, qemu, k, i, mem) }},
	} {
		u, err := m.run(ctx, kernel, initrd, mem)
		if err != nil {
			fmt.Printf("%s%s: %v\n", errorPrefix, m.name, err)
			failed = true
			continue
		}
		fmt.Printf("%s%s pss_kib %d guest_pss_kib %d rss_kib %d guest_rss_kib %d agent_s %.3f\n",
			linePrefix, m.name, u.pss, u.guestPss, u.rss, u.guestRss, u.agent.Seconds())
	}
	if failed {
		os.Exit(1)
	}
}

// p7Prefix starts the P7 lines.
const p7Prefix = "HUSK-VMMEM-P7"

// firstRunCPU boots the guest as builtinVM does, stops it after a second,
// and reads first_run_cpu from the VMM process's last log line (which the
// parent logs at debug level, line by line).
func firstRunCPU(ctx context.Context, kernel, initrd string, mem uint64, i int) (time.Duration, error) {
	dir := fmt.Sprintf("/run/husk/vmmem-p7-%d", i)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	var logBuf lockedBuffer
	lctx := logging.WithLogger(ctx, slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	v, err := builtin.New().Start(lctx, &virt.VMConfig{
		ID: fmt.Sprintf("p7-%d", i), Dir: dir, Kernel: kernel, Initrd: initrd,
		KernelParams: strings.Fields(params), VCPUs: 1, MemoryMiB: mem, DiskSlots: 1,
	})
	if err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	if err := v.Stop(context.WithoutCancel(ctx)); err != nil {
		return 0, fmt.Errorf("stop: %w", err)
	}
	<-v.Done()
	re := regexp.MustCompile(`first_run_cpu=([0-9.]+[a-zµ]+)`)
	for range 50 { // the log's last line may still be on its way
		if m := re.FindStringSubmatch(logBuf.String()); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil || d <= 0 {
				return 0, fmt.Errorf("first_run_cpu %q: %v", m[1], err)
			}
			return d, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no first_run_cpu in the VMM process's log: %s", tail(logBuf.String(), 600))
}

// withoutVMMBinary runs f with husk-vmm moved away from next to this
// program, so that the builtin hypervisor f creates re-executes this
// program instead; without husk-vmm there it returns 0 and runs nothing.
func withoutVMMBinary(f func() (time.Duration, error)) (time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	p := filepath.Join(filepath.Dir(exe), builtin.VMMBinary)
	if _, err := os.Stat(p); err != nil {
		return 0, nil
	}
	if err := os.Rename(p, p+".away"); err != nil {
		return 0, err
	}
	defer os.Rename(p+".away", p)
	return f()
}

// RefArg runs the reference load instead (vmmem ref FILE...): the work a
// VMM process does before its guest runs, without KVM: a Go program
// starts, maps fresh anonymous memory and reads the files into it.
const RefArg = "ref"

// refLoad runs the reference load in a new process of this binary and
// returns that process's CPU time (user + system).
func refLoad(files ...string) (time.Duration, error) {
	cmd := exec.Command("/proc/self/exe", append([]string{RefArg}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("reference load: %v: %s", err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// refMain is the reference load's process.
func refMain(files []string) int {
	total := 0
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		total += int(st.Size())
	}
	if total == 0 || total > 1<<30 {
		fmt.Fprintln(os.Stderr, "reference load: want 1 byte to 1 GiB of files, have", total)
		return 1
	}
	mem, err := syscall.Mmap(-1, 0, total, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	off := 0
	for _, f := range files {
		fd, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		n, err := io.ReadFull(fd, mem[off:])
		fd.Close()
		if err != nil && err != io.ErrUnexpectedEOF {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		off += n
	}
	return 0
}

// lockedBuffer is a strings.Builder for a logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// usage is a VMM process's memory, in KiB, and how long its agent took.
type usage struct {
	pss, guestPss, rss, guestRss uint64
	agent                        time.Duration
}

// builtinVM boots the guest as the virt handler does and measures its VMM
// process.
func builtinVM(ctx context.Context, kernel, initrd string, mem uint64) (usage, error) {
	dir := "/run/husk/vmmem"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return usage{}, err
	}
	start := time.Now()
	v, err := builtin.New().Start(ctx, &virt.VMConfig{
		ID: "vmmem", Dir: dir, Kernel: kernel, Initrd: initrd,
		KernelParams: strings.Fields(params), VCPUs: 1, MemoryMiB: mem, DiskSlots: 1,
	})
	if err != nil {
		return usage{}, err
	}
	defer v.Stop(context.WithoutCancel(ctx))
	if err := checkAgent(ctx, func(ctx context.Context) (net.Conn, error) { return v.Dial(ctx, api.AgentPort) }); err != nil {
		return usage{}, fmt.Errorf("%w (VMM: %v)", err, v.Err())
	}
	agent := time.Since(start)
	time.Sleep(settle)
	u, err := measure(v.Pid(), mem)
	u.agent = agent
	if err == nil {
		printMaps("builtin", v.Pid(), mem)
	}
	return u, err
}

// qemuVM boots the guest in QEMU microvm, as shipped, with KVM and a
// vhost-vsock device for the agent, and measures QEMU's process.
func qemuVM(ctx context.Context, qemu, kernel, initrd string, mem uint64) (usage, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, qemu, "-L", "/usr/share/qemu", "-M", "microvm", "-accel", "kvm", "-cpu", "host",
		"-m", strconv.FormatUint(mem, 10), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "file:/run/qemu-console.log", "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", params,
		"-device", fmt.Sprintf("vhost-vsock-device,guest-cid=%d", qemuCID))
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return usage{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}()
	dial := func(ctx context.Context) (net.Conn, error) {
		select {
		case err := <-done:
			done <- err
			console, _ := os.ReadFile("/run/qemu-console.log")
			return nil, fmt.Errorf("QEMU exited: %v: %s; console ends: %s", err, out.String(), tail(string(console), 600))
		default:
		}
		return vsock.Dial(qemuCID, api.AgentPort, nil)
	}
	if err := checkAgent(ctx, dial); err != nil {
		return usage{}, err
	}
	agent := time.Since(start)
	time.Sleep(settle)
	u, err := measure(cmd.Process.Pid, mem)
	u.agent = agent
	return u, err
}

// checkAgent dials until the agent answers Check, for at most two minutes.
func checkAgent(ctx context.Context, dial func(context.Context) (net.Conn, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		conn, err := dial(ctx)
		if err == nil {
			cl := client.New(conn, client.Options{CallTimeout: 5 * time.Second})
			_, err = cl.Check(ctx)
			cl.Close()
			if err == nil {
				return nil
			}
		} else if strings.Contains(err.Error(), "QEMU exited") {
			return err
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the agent did not answer: %v", last)
}

// measure reads pid's smaps: total PSS and RSS, and those of the guest's
// RAM (the mapping of at least memMiB with the most resident pages).
func measure(pid int, memMiB uint64) (usage, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps"))
	if err != nil {
		return usage{}, err
	}
	var u usage
	var size, rss, pss uint64
	found := false
	flush := func() {
		if size >= memMiB<<10 && rss >= u.guestRss {
			u.guestRss, u.guestPss, found = rss, pss, true
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "Size:":
			size, rss, pss = n, 0, 0
		case "Rss:":
			rss = n
			u.rss += n
		case "Pss:":
			pss = n
			u.pss += n
			flush()
		}
	}
	if !found {
		return u, errors.New("no mapping as large as the guest's memory")
	}
	return u, nil
}

// mapPrefix starts the lines of a VMM process's memory by mapping.
const mapPrefix = "HUSK-VMMEM-MAP: "

// printMaps prints where pid's memory beside its guest RAM is, summed by
// mapping name (a file's path, [heap], [stack], or [anon <size> KiB] for
// unnamed mappings of that size) and kind (text, data, ro), largest RSS
// first, one line each:
//
//	HUSK-VMMEM-MAP: <vmm> <name> <kind> rss_kib N pss_kib N anon_kib N
//
// The guest RAM mapping (as measure picks it) is left out.
func printMaps(vmm string, pid int, memMiB uint64) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps"))
	if err != nil {
		fmt.Printf("%s%s: smaps: %v\n", errorPrefix, vmm, err)
		return
	}
	type sum struct{ rss, pss, anon uint64 }
	type key struct{ name, kind string }
	sums := map[key]*sum{}
	var cur key
	var size, rss, pss, anon uint64
	var guestRSS uint64
	guestKey := -1
	type mapping struct {
		k              key
		size, rss, pss uint64
		anon           uint64
	}
	var maps []mapping
	flush := func() {
		if cur.name == "" {
			return
		}
		k := cur
		if k.name == "[anon]" { // by size: Go's heap arenas, thread stacks, the runtime's own
			k.name = fmt.Sprintf("[anon %d KiB]", size)
		}
		maps = append(maps, mapping{k, size, rss, pss, anon})
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4 {
			flush()
			name := "[anon]"
			if len(f) >= 6 {
				name = strings.Join(f[5:], " ")
			}
			kind := "data"
			switch {
			case strings.Contains(f[1], "x"):
				kind = "text"
			case !strings.Contains(f[1], "w"):
				kind = "ro"
			}
			cur, size, rss, pss, anon = key{name, kind}, 0, 0, 0, 0
			continue
		}
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "Size:":
			size = n
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		case "Anonymous:":
			anon = n
		}
	}
	flush()
	for i, m := range maps {
		if m.size >= memMiB<<10 && m.rss >= guestRSS {
			guestRSS, guestKey = m.rss, i
		}
	}
	for i, m := range maps {
		if i == guestKey {
			continue
		}
		s := sums[m.k]
		if s == nil {
			s = &sum{}
			sums[m.k] = s
		}
		s.rss += m.rss
		s.pss += m.pss
		s.anon += m.anon
	}
	keys := make([]key, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(sums[b].rss, sums[a].rss) })
	for _, k := range keys {
		if s := sums[k]; s.rss > 0 {
			fmt.Printf("%s%s %s %s rss_kib %d pss_kib %d anon_kib %d\n", mapPrefix, vmm, strings.ReplaceAll(k.name, " ", "_"), k.kind, s.rss, s.pss, s.anon)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
