package builtin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/version"
)

// ProcessArg is the first argument with which Start re-executes the shim
// binary as a VM's VMM process; the shim's main then calls Main (see the
// package documentation).
const ProcessArg = "vmm"

// controlFD is the control channel's descriptor in the VMM process.
const controlFD = 3

// Bounds on the VMM process's side of the channel. The parent is trusted,
// but a process that waits forever for a parent that is gone helps nobody.
const (
	configTimeout = 30 * time.Second
	childWriteTO  = 5 * time.Second
	// stopReplyWait is how long the process, its VM stopped on request,
	// waits for the stop reply to be written before it exits anyway.
	stopReplyWait = 2 * time.Second
)

// Main is the VMM process: it reads its VM's config from the control
// channel, builds the VM, confines itself, runs the guest and serves the
// parent's requests until the VM ends; its exit code says how (exitPowerOff,
// exitReboot, exitStopped, exitFailed). It never returns.
func Main() {
	runtime.LockOSThread()
	os.Exit(runChild())
}

func runChild() int {
	// The name ps and top show (the executable's would be "exe").
	_ = os.WriteFile("/proc/self/comm", []byte("husk-vmm"), 0)
	// The console and log are pipes to the parent: if it is gone, a write
	// fails instead of killing the process (the channel's end stops it).
	signal.Ignore(unix.SIGPIPE)
	if err := closeInheritedFDs(); err != nil {
		fmt.Fprintln(os.Stderr, "husk-vmm:", err)
		return exitFailed
	}
	ctl, err := childConn()
	if err != nil {
		fmt.Fprintln(os.Stderr, "husk-vmm:", err)
		return exitFailed
	}
	ctl.SetReadDeadline(time.Now().Add(configTimeout))
	req, err := readConfig(ctl)
	ctl.SetReadDeadline(time.Time{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "husk-vmm: reading the config:", err)
		return exitFailed
	}
	if err := checkBuild(req.Config.Build, version.Revision); err != nil {
		fmt.Fprintln(os.Stderr, "husk-vmm:", err)
		writeRecord(ctl, errorReply(req.ID, err), nil, time.Now().Add(childWriteTO))
		return exitFailed
	}
	level := slog.LevelInfo
	if req.Config.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("vm", req.Config.ID)
	m, err := setup(req.Config, log)
	if err != nil {
		log.Error("VMM setup failed", "error", err)
		writeRecord(ctl, errorReply(req.ID, err), nil, time.Now().Add(childWriteTO))
		return exitFailed
	}
	if err := writeRecord(ctl, &reply{ID: req.ID}, nil, time.Now().Add(childWriteTO)); err != nil {
		log.Error("VMM ready, parent unreachable", "error", err)
		m.Stop()
	}
	s := &server{ctl: ctl, m: m, log: log, ended: make(chan struct{}), stopReplied: make(chan struct{})}
	go s.serve()
	code := m.Wait()
	close(s.ended)
	if s.stopping.Load() {
		select {
		case <-s.stopReplied:
		case <-time.After(stopReplyWait):
		}
	}
	return code
}

// setup builds the VM from inside its directory, confines the process and
// starts the guest.
func setup(cfg *childConfig, log *slog.Logger) (machine, error) {
	// Everything the process will never be able to open again is loaded
	// now: the local time zone (slog's timestamps) is read lazily.
	_ = time.Local.String()
	if err := unix.Chdir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("entering the VM dir: %w", err)
	}
	m, err := newMachine(cfg, os.Stdout, log)
	// The machine has its own descriptors of the taps.
	for _, f := range cfg.Taps {
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("building the VM: %w", err)
	}
	if err := confine(cfg.Dir); err != nil {
		return nil, fmt.Errorf("confining the VMM process: %w", err)
	}
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("starting the VM: %w", err)
	}
	log.Info("VM running, VMM process confined")
	return m, nil
}

// childConn returns the control channel.
func childConn() (*net.UnixConn, error) {
	f := os.NewFile(controlFD, "control")
	if f == nil {
		return nil, errors.New("no control channel on fd 3")
	}
	defer f.Close() // FileConn holds a duplicate
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("control channel is a %T, not a Unix socket", c)
	}
	return uc, nil
}

// readConfig reads the first request, the VM's config, with a tap's
// descriptor for each of its NICs (in Config.Taps).
func readConfig(c *net.UnixConn) (*request, error) {
	b, fds, err := readRecord(c, maxRequest)
	if err != nil {
		return nil, err
	}
	var req request
	if err := decodeStrict(b, &req); err != nil {
		closeFDs(fds)
		return nil, err
	}
	if req.Op != opConfig || req.Config == nil {
		closeFDs(fds)
		return nil, fmt.Errorf("first request %q, want %q", req.Op, opConfig)
	}
	if len(fds) != len(req.Config.Nets) {
		closeFDs(fds)
		return nil, fmt.Errorf("config with %d NICs and %d descriptors", len(req.Config.Nets), len(fds))
	}
	for i, fd := range fds {
		req.Config.Taps = append(req.Config.Taps, os.NewFile(uintptr(fd), "tap "+req.Config.Nets[i].ID))
	}
	return &req, nil
}

// checkBuild refuses to run a VM for a parent of another build than this
// program's: husk-vmm is installed beside the shim, and one left from
// another build (a partial upgrade) may speak another control protocol.
// A build without a revision (go build without make's -ldflags: tests)
// matches any.
func checkBuild(parent, own string) error {
	if parent == "" || parent == "unknown" || own == "unknown" || parent == own {
		return nil
	}
	return fmt.Errorf("this VMM program is revision %s, the shim that started it %s: install both from one build (make install)", own, parent)
}

func errorReply(id uint64, err error) *reply {
	return &reply{ID: id, Error: &replyError{Code: errorCode(err), Message: err.Error()}}
}

// server answers the parent's requests while the VM runs.
type server struct {
	ctl         *net.UnixConn
	m           machine
	log         *slog.Logger
	ended       chan struct{} // closed when the machine's Wait returned
	stopReplied chan struct{} // closed when the stop reply is written
	stopping    atomic.Bool
}

// serve answers requests until the channel ends (the parent is gone, or
// broke the protocol: nobody controls the VM any more, so it is stopped)
// or a stop request has been answered.
func (s *server) serve() {
	for {
		b, fds, err := readRecord(s.ctl, maxRequest)
		var req request
		if err == nil {
			if err = decodeStrict(b, &req); err != nil {
				closeFDs(fds)
			}
		}
		if err != nil {
			s.log.Warn("control channel ended, stopping the VM", "error", err)
			s.m.Stop()
			return
		}
		rep := s.handle(&req, fds)
		if err := writeRecord(s.ctl, rep, nil, time.Now().Add(childWriteTO)); err != nil {
			s.log.Warn("writing a reply", "op", req.Op, "error", err)
		}
		if req.Op == opStop {
			close(s.stopReplied)
			return
		}
	}
}

func (s *server) handle(req *request, fds []int) *reply {
	if req.Op != opAttach {
		closeFDs(fds)
	}
	rep := &reply{ID: req.ID}
	var err error
	switch req.Op {
	case opAttach:
		err = s.attach(req, fds)
	case opDetach:
		if req.Disk == nil {
			err = errors.New("detach without a disk")
		} else {
			err = s.m.DetachDisk(req.Disk.Serial)
		}
	case opStats:
		rep.Stats = s.m.Stats()
	case opStop:
		s.stopping.Store(true)
		s.m.Stop()
		<-s.ended
	default:
		if f, ok := debugRequests[req.Op]; ok {
			rep.Text, err = f(s.m)
		} else {
			err = fmt.Errorf("unknown request %q", req.Op)
		}
	}
	if err != nil {
		return errorReply(req.ID, err)
	}
	return rep
}

// attach gives the machine the disk file that came with the request; on
// error the file is closed (and its lock, if this was the last
// descriptor, released).
func (s *server) attach(req *request, fds []int) error {
	if req.Disk == nil || len(fds) != 1 {
		closeFDs(fds)
		return fmt.Errorf("attach with %d descriptors", len(fds))
	}
	f := os.NewFile(uintptr(fds[0]), "disk "+req.Disk.Serial)
	if err := s.m.AttachDisk(f, req.Disk.ReadOnly, req.Disk.Serial); err != nil {
		f.Close()
		return err
	}
	return nil
}
