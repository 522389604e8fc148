//go:build !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime/virt"
	"github.com/huskrt/husk/runtime/virt/internal/vmproc"
	"github.com/huskrt/husk/vmm/virtio/blk"
	"github.com/huskrt/husk/vmm/virtio/vsock"
)

var (
	// ErrSyscallNotAllowed is wrapped by Err when the VMM process was
	// killed by its seccomp filter: it made a system call outside its
	// allow-list (a bug, or a guest that broke out of KVM).
	ErrSyscallNotAllowed = errors.New("VMM process killed by SIGSYS: a system call outside its seccomp allow-list")
	// ErrReboot is Err when the guest rebooted (or panicked with
	// panic=-1): the VM does not restart.
	ErrReboot = errors.New("guest rebooted; the VM does not restart")
	// ErrVMMFailed is wrapped by Err when the VMM process ended in any
	// other way than a power-off or a stop.
	ErrVMMFailed = errors.New("VMM process failed")
	// ErrVMEnded is what requests to a VM that has ended return.
	ErrVMEnded = errors.New("VM has ended")
)

// vm is a running VM: the parent's handle on its VMM process.
type vm struct {
	id, dir      string
	memoryMiB    uint64
	slots        int
	replyTimeout time.Duration
	stopTimeout  time.Duration

	cmd     *exec.Cmd
	started time.Time
	ctl     *control
	stderr  *tail

	done chan struct{} // closed once the process is reaped
	err  error         // why it ended; set before done is closed

	mu         sync.Mutex
	killReason error // guarded by mu; why the parent killed it, if it did
}

var _ virt.VM = (*vm)(nil)

// wait reaps the process, classifies its end, removes its files and
// closes done.
func (v *vm) wait() {
	waitErr := v.cmd.Wait()
	reaper.Release(v.cmd.Process.Pid)
	v.mu.Lock()
	killed := v.killReason
	v.mu.Unlock()
	v.err = exitErr(v.cmd.ProcessState, waitErr, killed, v.stderr.String())
	if v.ctl != nil {
		v.ctl.close(fmt.Errorf("%w: %v", ErrVMEnded, errOrPowerOff(v.err)))
	}
	// The record goes only now: until the process is reaped its pid is
	// not free for another.
	_ = removeState(v.dir)
	close(v.done)
}

func errOrPowerOff(err error) any {
	if err == nil {
		return "powered off or stopped"
	}
	return err
}

// exitErr turns the process's end into Err's value.
func exitErr(ps *os.ProcessState, waitErr error, killed error, stderr string) error {
	if ps == nil {
		return fmt.Errorf("%w: %v", ErrVMMFailed, waitErr)
	}
	st, _ := ps.Sys().(syscall.WaitStatus)
	lastLines := func(err error) error {
		if stderr == "" {
			return err
		}
		return fmt.Errorf("%w; its last lines:\n%s", err, stderr)
	}
	switch {
	case st.Exited() && (st.ExitStatus() == exitPowerOff || st.ExitStatus() == exitStopped):
		return nil
	case st.Exited() && st.ExitStatus() == exitReboot:
		return ErrReboot
	case st.Signaled() && st.Signal() == syscall.SIGSYS:
		return lastLines(ErrSyscallNotAllowed)
	case st.Signaled() && killed != nil:
		return fmt.Errorf("%w: killed: %w", ErrVMMFailed, killed)
	default:
		return lastLines(fmt.Errorf("%w: %s", ErrVMMFailed, ps))
	}
}

// kill SIGKILLs the process for reason (kept for Err), unless it has
// already been reaped.
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

// channelBroken is the control channel's onBroken: a VMM that broke the
// protocol is killed; one that closed the channel is given closedGrace
// to exit (it is exiting, normally) before it is killed.
func (v *vm) channelBroken(err error) {
	if !errors.Is(err, errChannelClosed) {
		v.kill(err)
		return
	}
	go func() {
		select {
		case <-v.done:
		case <-time.After(closedGrace):
			v.kill(err)
		}
	}()
}

// abort ends a VM whose Start failed: kill, reap, remove its files.
func (v *vm) abort() {
	v.kill(errors.New("start failed"))
	<-v.done
}

// Dial connects to the guest's vsock port through the hybrid vsock's
// socket. The VMM's handshake answer is read byte by byte, bounded in
// length and by ctx (vsock.Dial).
func (v *vm) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	select {
	case <-v.done:
		return nil, fmt.Errorf("builtin: dial vsock port %d: %w", port, ErrVMEnded)
	default:
	}
	c, _, err := vsock.Dial(ctx, v.dir+"/"+vsockName, port)
	if err != nil {
		return nil, fmt.Errorf("builtin: dial vsock port %d: %w", port, err)
	}
	return c, nil
}

// AttachDisk opens and locks the disk at path here (blk.OpenLocked: shared
// for a read-only disk, exclusive otherwise; the lock lasts as long as
// the VMM holds the descriptor) and passes the descriptor to the VMM. The
// VMM never opens a host path.
func (v *vm) AttachDisk(ctx context.Context, path string, readOnly bool, serial string) error {
	if serial == "" || len(serial) > maxSerial || strings.IndexByte(serial, 0) >= 0 {
		return fmt.Errorf("builtin: attach: %w: serial %q: want 1 to %d bytes without NUL", errdefs.ErrInvalidArgument, serial, maxSerial)
	}
	f, err := blk.OpenLocked(path, readOnly)
	if err != nil {
		return fmt.Errorf("builtin: attach %s: %w", path, err)
	}
	defer f.Close() // the VMM holds its own descriptor of it now
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var callErr error
	if err := rc.Control(func(fd uintptr) {
		_, callErr = v.call(ctx, &request{Op: opAttach, Disk: &diskRequest{Serial: serial, ReadOnly: readOnly}}, []int{int(fd)})
	}); err != nil {
		return err
	}
	if callErr != nil {
		return fmt.Errorf("builtin: attach %s as %q: %w", path, serial, callErr)
	}
	return nil
}

// call makes a request; once the VM has ended, every request fails with
// ErrVMEnded.
func (v *vm) call(ctx context.Context, req *request, fds []int) (*reply, error) {
	select {
	case <-v.done:
		return nil, ErrVMEnded
	default:
	}
	r, err := v.ctl.call(ctx, req, fds, v.replyTimeout)
	if err != nil {
		select {
		case <-v.done:
			return nil, fmt.Errorf("%w: %w", ErrVMEnded, err)
		default:
		}
		return nil, err
	}
	return r, replyErr(req.Op, r)
}

// DetachDisk empties the slot holding serial.
func (v *vm) DetachDisk(ctx context.Context, serial string) error {
	if _, err := v.call(ctx, &request{Op: opDetach, Disk: &diskRequest{Serial: serial}}, nil); err != nil {
		return fmt.Errorf("builtin: detach %q: %w", serial, err)
	}
	return nil
}

// Stats returns the VM's counters: exits and disks as the VMM reports
// them (validated), memory, RSS and uptime as the parent measures them.
func (v *vm) Stats(ctx context.Context) (virt.VMStats, error) {
	r, err := v.call(ctx, &request{Op: opStats}, nil)
	if err == nil {
		if err = checkStats(r.Stats, v.slots); err != nil {
			v.kill(err)
		}
	}
	if err != nil {
		return virt.VMStats{}, fmt.Errorf("builtin: stats: %w", err)
	}
	s := virt.VMStats{Exits: r.Stats.Exits, MemoryMiB: v.memoryMiB, Uptime: time.Since(v.started), RSSBytes: rss(v.cmd.Process.Pid)}
	for _, d := range r.Stats.Disks {
		s.Disks = append(s.Disks, virt.DiskStats{Serial: d.Serial, Reads: d.Reads, Writes: d.Writes, BytesRead: d.BytesRead, BytesWritten: d.BytesWritten})
	}
	return s, nil
}

// rss is process pid's resident set in bytes (0 if unknown).
func rss(pid int) uint64 { return vmproc.RSS(pid) }

// Pid is the VMM process's pid.
func (v *vm) Pid() int { return v.cmd.Process.Pid }

// Stop asks the VMM to stop the VM and exit, kills it if it has not
// within the stop timeout (or ctx), and waits until it is reaped (bounded
// by ctx). A VM that has ended already is not an error.
func (v *vm) Stop(ctx context.Context) error {
	// The reply's own deadline is later than the grace, so that a VMM
	// that does not stop is killed for that, not for a late reply.
	ask := func(grace context.Context) { v.ctl.call(grace, &request{Op: opStop}, nil, 2*v.stopTimeout) }
	if err := vmproc.Stop(ctx, v.stopTimeout, v.done, ask, v.kill); err != nil {
		return fmt.Errorf("builtin: stop: VMM process %d: %w", v.Pid(), err)
	}
	return nil
}

// Done is closed when the VMM process has ended and been reaped.
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

// remoteError is an error the VMM process replied with.
type remoteError struct {
	op, code, msg string
}

func (e *remoteError) Error() string { return "VMM " + e.op + ": " + e.msg }

// Unwrap classifies the VMM's error for errors.Is.
func (e *remoteError) Unwrap() error {
	switch e.code {
	case codeNoFreeSlot:
		return virt.ErrNoFreeSlot
	case codeExists:
		return errdefs.ErrAlreadyExists
	case codeNotFound:
		return errdefs.ErrNotFound
	case codeInvalid:
		return errdefs.ErrInvalidArgument
	}
	return nil
}

// replyErr is r's error, if it is an error reply.
func replyErr(op string, r *reply) error {
	if r.Error == nil {
		return nil
	}
	return &remoteError{op: op, code: r.Error.Code, msg: cleanText(r.Error.Message)}
}
