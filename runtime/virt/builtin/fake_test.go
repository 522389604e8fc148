//go:build !husk_vmmchild

package builtin

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/version"
	"github.com/huskrt/husk/vmm"
	virtionet "github.com/huskrt/husk/vmm/virtio/net"
)

// testModeEnv, set to "fake" in a test VMM process's environment, makes
// it run fakeMachine instead of a VM: everything but KVM (the control
// channel, confinement, seccomp, the vsock socket, disks) is the real
// VMM process's code.
const testModeEnv = "HUSK_BUILTIN_TEST"

// testRevisionEnv, in a test VMM process's environment, is the revision
// that process takes for its own (version.Revision).
const testRevisionEnv = "HUSK_BUILTIN_TEST_REVISION"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ProcessArg {
		if os.Getenv(testModeEnv) == "fake" {
			newMachine = newFakeMachine
		}
		debugRequests = testRequests
		if r := os.Getenv(testRevisionEnv); r != "" {
			version.Revision = r // a VMM program of another build
		}
		Main()
	}
	os.Exit(m.Run())
}

// fakeMachine stands in for a VM in a test VMM process. Its "guest"
// answers hybrid vsock handshakes on the VM's socket and echoes lines; it
// runs until stopped or told by a test request to power off, reboot or
// crash.
type fakeMachine struct {
	slots    int
	listener *net.UnixListener
	end      chan int
	endOnce  sync.Once

	mu        sync.Mutex
	disks     map[string]*os.File // guarded by mu
	ignoreOff bool                // guarded by mu: Stop does nothing

	// taps are the NICs' backends, as vmm.New takes them (TapFile), and
	// nets the NICs.
	taps []*os.File
	nets []childNet
}

func newFakeMachine(cfg *childConfig, console io.Writer, _ *slog.Logger) (machine, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: vsockName, Net: "unix"})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(console, "fake guest booting: %s\n", cfg.Cmdline)
	m := &fakeMachine{slots: cfg.DiskSlots, listener: l, end: make(chan int, 1), disks: map[string]*os.File{}, nets: cfg.Nets}
	for _, f := range cfg.Taps {
		tap, err := virtionet.TapFile(f)
		if err != nil {
			return nil, err
		}
		m.taps = append(m.taps, tap)
	}
	return m, nil
}

func (m *fakeMachine) Start() error {
	go m.serveVsock()
	return nil
}

// serveVsock is the fake guest: "CONNECT <port>\n" gets "OK <port>\n",
// then each line comes back prefixed with "echo:".
func (m *fakeMachine) serveVsock() {
	for {
		c, err := m.listener.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			line, err := r.ReadString('\n')
			var port uint32
			if err != nil {
				return
			}
			if _, err := fmt.Sscanf(line, "CONNECT %d\n", &port); err != nil || port == 0 {
				return
			}
			fmt.Fprintf(c, "OK %d\n", 1<<30)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "echo:%s", line)
			}
		}()
	}
}

func (m *fakeMachine) finish(code int) {
	m.endOnce.Do(func() { m.end <- code })
}

func (m *fakeMachine) Wait() int { return <-m.end }

func (m *fakeMachine) Stop() {
	m.mu.Lock()
	ignore := m.ignoreOff
	m.mu.Unlock()
	if !ignore {
		m.finish(exitStopped)
	}
}

func (m *fakeMachine) AttachDisk(f *os.File, readOnly bool, serial string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !readOnly:
		return fmt.Errorf("%w: slots are read-only", vmm.ErrNoFreeSlot)
	case m.disks[serial] != nil:
		return fmt.Errorf("%w: %q", vmm.ErrDiskExists, serial)
	case len(m.disks) == m.slots:
		return fmt.Errorf("%w: all %d in use", vmm.ErrNoFreeSlot, m.slots)
	}
	m.disks[serial] = f
	return nil
}

func (m *fakeMachine) DetachDisk(serial string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.disks[serial]
	if f == nil {
		return fmt.Errorf("%w: %q", vmm.ErrDiskNotFound, serial)
	}
	delete(m.disks, serial)
	return f.Close()
}

// Stats reads each disk's first sector, to show the descriptor works
// under the seccomp filter.
func (m *fakeMachine) Stats() *childStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &childStats{Exits: map[string]uint64{vmm.ExitsIO: 7, vmm.ExitsMMIO: 3}}
	var serials []string
	for k := range m.disks {
		serials = append(serials, k)
	}
	sort.Strings(serials)
	for _, k := range serials {
		b := make([]byte, 512)
		n, _ := m.disks[k].ReadAt(b, 0)
		s.Disks = append(s.Disks, childDiskStats{Serial: k, Reads: 1, BytesRead: uint64(n)})
	}
	return s
}

// testRequests are the test VMM process's extra requests.
var testRequests = map[string]func(machine) (string, error){
	opForbidden: forbiddenSyscall,
	"poweroff":  endLater(exitPowerOff),
	"reboot":    endLater(exitReboot),
	"crash": func(machine) (string, error) {
		fmt.Fprintln(os.Stderr, "fake VMM crashing: the marker")
		os.Exit(exitFailed)
		return "", nil
	},
	"ignore-stop": func(m machine) (string, error) {
		f := m.(*fakeMachine)
		f.mu.Lock()
		f.ignoreOff = true
		f.mu.Unlock()
		return "", nil
	},
	// nets sends a frame out of each NIC's tap, to show the descriptors
	// reached the process and work under the seccomp filter.
	"nets": func(m machine) (string, error) {
		f := m.(*fakeMachine)
		for i, tap := range f.taps {
			if _, err := tap.Write([]byte("frame from " + f.nets[i].ID + " " + f.nets[i].MAC)); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("sent %d", len(f.taps)), nil
	},
	// self reports what the process sees from inside.
	"self": func(machine) (string, error) {
		_, err := os.ReadDir("/")
		_, statErr := os.Stat("/etc/passwd")
		return fmt.Sprintf("pid=%d readdir=%v stat-etc-passwd=%v", unix.Getpid(), err, statErr), nil
	},
	// spin starts goroutines that lock their threads and exit, so that
	// threads come and go after confinement.
	"spin": func(machine) (string, error) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				runtimeLockAndSleep(time.Millisecond)
			})
		}
		wg.Wait()
		return "spun", nil
	},
}

// endLater ends the fake machine with code once the reply is on its way.
func endLater(code int) func(machine) (string, error) {
	return func(m machine) (string, error) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			m.(*fakeMachine).finish(code)
		}()
		return "ending", nil
	}
}

// runtimeLockAndSleep ends its goroutine locked to its thread, which the
// Go runtime then ends too.
func runtimeLockAndSleep(d time.Duration) {
	runtime.LockOSThread()
	time.Sleep(d)
}
