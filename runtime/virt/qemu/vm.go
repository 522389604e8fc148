package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
)

var (
	// ErrReboot is Err when the guest rebooted (or panicked with
	// panic=-1): with -no-reboot, QEMU exits instead.
	ErrReboot = errors.New("guest rebooted; the VM does not restart")
	// ErrQEMUFailed is wrapped by Err when QEMU ended in any other way
	// than a guest power-off or a stop.
	ErrQEMUFailed = errors.New("QEMU failed")
	// ErrVMEnded is what requests to a VM that has ended return.
	ErrVMEnded = errors.New("VM has ended")
)

// vm is a running VM: QEMU's process, its QMP channel and the agent's.
type vm struct {
	id, dir, accel string
	memoryMiB      uint64
	replyTimeout   time.Duration
	stopTimeout    time.Duration
	ch             channel

	cmd     *exec.Cmd
	started time.Time
	stderr  *vmproc.Tail

	done chan struct{} // closed once QEMU is reaped
	err  error         // why it ended; set before done is closed

	mu         sync.Mutex
	qmp        *qmpClient               // guarded by mu; nil until Start has negotiated it
	killReason error                    // guarded by mu; why the shim killed QEMU, if it did
	shutdown   string                   // guarded by mu; the reason of QEMU's SHUTDOWN event
	deleted    map[string]chan struct{} // guarded by mu; by device id, closed once QEMU reported it deleted

	diskMu sync.Mutex
	slots  []slot // guarded by diskMu
}

// slot is one PCIe root port for a disk.
type slot struct {
	serial string    // "" when free
	state  slotState // what is under way
}

type slotState int

const (
	slotFree slotState = iota
	slotAttaching
	slotAttached
	slotDetaching
)

var _ virt.VM = (*vm)(nil)

func (v *vm) setQMP(q *qmpClient) {
	v.mu.Lock()
	v.qmp = q
	v.mu.Unlock()
}

func (v *vm) client() (*qmpClient, error) {
	select {
	case <-v.done:
		return nil, ErrVMEnded
	default:
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.qmp == nil {
		return nil, ErrVMEnded
	}
	return v.qmp, nil
}

// event takes QEMU's events (from QMP's reading goroutine).
func (v *vm) event(e qmpEvent) {
	switch e.Name {
	case "SHUTDOWN":
		var d struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(e.Data, &d)
		v.mu.Lock()
		if v.shutdown == "" {
			v.shutdown = cleanText(d.Reason)
		}
		v.mu.Unlock()
	case "DEVICE_DELETED":
		var d struct {
			Device string `json:"device"`
		}
		if json.Unmarshal(e.Data, &d) != nil || d.Device == "" {
			return
		}
		// Recorded whether or not a detach waits for it: the guest can
		// eject a device itself (ACPI). Only the slots' device ids are
		// kept, so events cannot grow the map.
		if !v.isDeviceID(d.Device) {
			return
		}
		v.mu.Lock()
		c, ok := v.deleted[d.Device]
		if !ok {
			c = make(chan struct{})
			v.deleted[d.Device] = c
		}
		select {
		case <-c:
		default:
			close(c)
		}
		v.mu.Unlock()
	}
}

// isDeviceID says whether id names one of the VM's disk slots' devices.
func (v *vm) isDeviceID(id string) bool {
	for i := range v.slots { // the slice's length never changes
		if id == deviceID(i) {
			return true
		}
	}
	return false
}

// wait reaps QEMU, classifies its end, releases the channel, removes the
// record and closes done.
func (v *vm) wait() {
	waitErr := v.cmd.Wait()
	reaper.Release(v.cmd.Process.Pid)
	v.mu.Lock()
	killed, shutdown, q := v.killReason, v.shutdown, v.qmp
	v.mu.Unlock()
	v.err = exitErr(v.cmd.ProcessState, waitErr, killed, shutdown, v.stderr.String())
	if q != nil {
		q.close()
	}
	_ = v.ch.close()
	// The record goes only now: until QEMU is reaped its pid is not free
	// for another.
	_ = vmproc.Remove(filepath.Join(v.dir, recordName))
	close(v.done)
}

// exitErr turns QEMU's end into Err's value.
func exitErr(ps *os.ProcessState, waitErr, killed error, shutdown, stderr string) error {
	if ps == nil {
		return fmt.Errorf("%w: %v", ErrQEMUFailed, waitErr)
	}
	st, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case st.Exited() && st.ExitStatus() == 0 && shutdown == "guest-reset":
		return ErrReboot
	case st.Exited() && st.ExitStatus() == 0:
		return nil // guest power-off, or quit
	case st.Signaled() && killed != nil:
		return fmt.Errorf("%w: killed: %w", ErrQEMUFailed, killed)
	case stderr != "":
		return fmt.Errorf("%w: %s; its last lines:\n%s", ErrQEMUFailed, ps, stderr)
	default:
		return fmt.Errorf("%w: %s", ErrQEMUFailed, ps)
	}
}

// kill SIGKILLs QEMU for reason (kept for Err), unless it has been reaped.
func (v *vm) kill(reason error) {
	v.mu.Lock()
	if v.killReason == nil {
		v.killReason = reason
	}
	v.mu.Unlock()
	select {
	case <-v.done:
	default:
		// os.Process signals through a pidfd: never another process.
		_ = v.cmd.Process.Kill()
	}
}

// abort ends a VM whose Start failed: kill, reap, remove its files.
func (v *vm) abort() {
	v.kill(errors.New("start failed"))
	<-v.done
}

// Dial connects to the guest's port through the VM's agent channel.
func (v *vm) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	select {
	case <-v.done:
		return nil, fmt.Errorf("qemu: dial port %d: %w", port, ErrVMEnded)
	default:
	}
	c, err := v.ch.dial(ctx, port)
	if err != nil {
		return nil, fmt.Errorf("qemu: dial port %d over %s: %w", port, v.ch.kind(), err)
	}
	return c, nil
}

// Stats returns the guest's memory size, QEMU's RSS and uptime as the
// shim measures them, and each attached disk's requests as QEMU counts
// them (query-blockstats, checked against the slots). QEMU does not count
// exits.
func (v *vm) Stats(ctx context.Context) (virt.VMStats, error) {
	q, err := v.client()
	if err != nil {
		return virt.VMStats{}, fmt.Errorf("qemu: stats: %w", err)
	}
	st := virt.VMStats{MemoryMiB: v.memoryMiB, RSSBytes: vmproc.RSS(v.cmd.Process.Pid), Uptime: time.Since(v.started)}
	ret, err := q.execute(ctx, "query-blockstats", nil, nil)
	if err != nil {
		return virt.VMStats{}, fmt.Errorf("qemu: stats: %w", err)
	}
	disks, err := v.diskStats(ret)
	if err != nil {
		return virt.VMStats{}, fmt.Errorf("qemu: stats: %w", err)
	}
	st.Disks = disks
	return st, nil
}

// blockStats is one entry of query-blockstats' reply.
type blockStats struct {
	QDev  string `json:"qdev"`
	Stats struct {
		RdOps   uint64 `json:"rd_operations"`
		WrOps   uint64 `json:"wr_operations"`
		RdBytes uint64 `json:"rd_bytes"`
		WrBytes uint64 `json:"wr_bytes"`
	} `json:"stats"`
}

// diskStats turns query-blockstats' reply into the attached slots' stats:
// an entry counts only if its device is an attached slot's (its qdev path
// names the slot's device), each slot once.
func (v *vm) diskStats(ret json.RawMessage) ([]virt.DiskStats, error) {
	var entries []blockStats
	if err := json.Unmarshal(ret, &entries); err != nil {
		return nil, fmt.Errorf("%w: query-blockstats: %v", ErrQMP, err)
	}
	v.diskMu.Lock()
	defer v.diskMu.Unlock()
	seen := make([]bool, len(v.slots))
	var out []virt.DiskStats
	for _, e := range entries {
		for i, s := range v.slots {
			if s.state != slotAttached || seen[i] || !strings.HasPrefix(e.QDev, "/machine/peripheral/"+deviceID(i)+"/") {
				continue
			}
			seen[i] = true
			out = append(out, virt.DiskStats{Serial: s.serial, Reads: e.Stats.RdOps, Writes: e.Stats.WrOps,
				BytesRead: e.Stats.RdBytes, BytesWritten: e.Stats.WrBytes})
		}
	}
	return out, nil
}

// Pid is QEMU's pid.
func (v *vm) Pid() int { return v.cmd.Process.Pid }

// Stop asks QEMU to quit (QMP quit), kills it if it has not within the
// stop timeout (or ctx), and waits until it is reaped (bounded by ctx).
// A VM that has ended already is not an error.
func (v *vm) Stop(ctx context.Context) error {
	ask := func(grace context.Context) {
		if q, err := v.client(); err == nil {
			// The reply may not come (QEMU exits): QEMU's end is what counts.
			q.execute(grace, "quit", nil, nil)
		}
	}
	if err := vmproc.Stop(ctx, v.stopTimeout, v.done, ask, v.kill); err != nil {
		return fmt.Errorf("qemu: stop: QEMU process %d: %w", v.Pid(), err)
	}
	return nil
}

// Done is closed when QEMU has ended and been reaped.
func (v *vm) Done() <-chan struct{} { return v.done }

// Err says why the VM ended: nil for a power-off or a stop.
func (v *vm) Err() error {
	select {
	case <-v.done:
		return v.err
	default:
		return nil
	}
}
