package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/internal/reaper"
)

// PodPIDArg is the argument that makes the agent's binary the holder of a
// pod's shared PID namespace (HoldPIDNamespace); cmd/husk-agent's main
// (and a test binary's TestMain) must check it first.
const PodPIDArg = "pod-pid-holder"

// podNamespaces are the namespaces a pod's containers share in the guest,
// as a runc pod's share its pause container's: IPC and UTS (the pod's
// hostname) always, PID when the pod asks (shareProcessNamespace). Under
// a CRI a container's spec joins the pause container's namespaces by a
// path on the host, which means nothing here: the host keeps the path as
// a mark (runtime/virt guestSpec), and the agent joins the container to
// the pod's namespace of that type instead. Namespaces without a path are
// the container's own, as before; the network is the VM's.
//
// IPC and UTS have no process: a thread unshares them and its namespace
// files are bind-mounted under dir, which keeps them alive after the
// thread is gone. A PID namespace dies with its first process, so it is
// held by a child of the agent (PodPIDArg) that is its PID 1 and reaps
// the pod's orphans, as pause does. Each is made at the first container
// that asks for it, and all go with the sandbox.
type podNamespaces struct {
	dir string

	mu       sync.Mutex
	shared   bool      // ipc and uts are mounted under dir; guarded by mu
	pid      *exec.Cmd // the PID namespace's holder; guarded by mu
	pidEnded chan struct{}
}

// joinPod rewrites spec's namespaces that name a path (the host's mark of
// "the pod's") into the pod's namespaces in the guest, making them on
// first use; hostname is the pod's, given to its UTS namespace. A path on
// a namespace the pod does not share in the guest is refused.
func (p *podNamespaces) joinPod(spec *specs.Spec, hostname string) error {
	if spec.Linux == nil {
		return nil
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		path, err := p.path(ns.Type, hostname)
		if err != nil {
			return err
		}
		spec.Linux.Namespaces[i].Path = path
	}
	return nil
}

// path returns the file of the pod's namespace of type t.
func (p *podNamespaces) path(t specs.LinuxNamespaceType, hostname string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch t {
	case specs.IPCNamespace, specs.UTSNamespace:
		if !p.shared {
			if err := p.makeSharedLocked(hostname); err != nil {
				return "", err
			}
		}
		return filepath.Join(p.dir, string(t)), nil
	case specs.PIDNamespace:
		if p.pid == nil {
			if err := p.startPIDLocked(); err != nil {
				return "", err
			}
		}
		select {
		case <-p.pidEnded:
			return "", fmt.Errorf("the pod's PID namespace ended with its holder: %w", errdefs.ErrUnavailable)
		default:
		}
		return fmt.Sprintf("/proc/%d/ns/pid", p.pid.Process.Pid), nil
	}
	return "", fmt.Errorf("namespace %s with a path: a VM's containers share only ipc, uts and pid with their pod: %w", t, errdefs.ErrInvalidArgument)
}

// makeSharedLocked makes the pod's IPC and UTS namespaces on a thread of
// its own and bind-mounts them under dir. The thread is never unlocked,
// so it ends with its goroutine and takes its namespaces out of the
// agent's process: only the mounts hold them.
// Preconditions: p.mu is held.
func (p *podNamespaces) makeSharedLocked(hostname string) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWIPC | unix.CLONE_NEWUTS); err != nil {
			runtime.UnlockOSThread() // nothing changed: the thread may serve again
			errc <- fmt.Errorf("unsharing the pod's ipc and uts namespaces: %w", err)
			return
		}
		if hostname != "" {
			if err := unix.Sethostname([]byte(hostname)); err != nil {
				errc <- fmt.Errorf("the pod's hostname %q: %w", hostname, err)
				return
			}
		}
		tid := unix.Gettid()
		for _, t := range []string{"ipc", "uts"} {
			dst := filepath.Join(p.dir, t)
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o400)
			if err != nil {
				errc <- err
				return
			}
			f.Close()
			src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, t)
			if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
				errc <- fmt.Errorf("holding the pod's %s namespace at %s: %w", t, dst, err)
				return
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		p.unmountShared()
		return err
	}
	p.shared = true
	return nil
}

func (p *podNamespaces) unmountShared() error {
	var errs []error
	for _, t := range []string{"ipc", "uts"} {
		dst := filepath.Join(p.dir, t)
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting the pod's %s namespace: %w", t, err))
		}
		if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startPIDLocked starts the PID namespace's holder: this binary with
// PodPIDArg, in a new PID namespace. (No Pdeathsig: it follows the
// thread that forked, which a locked goroutine may end.)
// Preconditions: p.mu is held.
func (p *podNamespaces) startPIDLocked() error {
	cmd := exec.Command("/proc/self/exe", PodPIDArg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
	own := reaper.Spawn()
	if err := cmd.Start(); err != nil {
		own(0)
		return fmt.Errorf("starting the holder of the pod's PID namespace: %w", err)
	}
	pid := cmd.Process.Pid
	own(pid)
	ended := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		reaper.Release(pid)
		close(ended)
	}()
	p.pid, p.pidEnded = cmd, ended
	return nil
}

// close ends the pod's namespaces: the PID holder (and with it whatever is
// left in its namespace), and the IPC and UTS mounts. Containers are gone
// by now.
func (p *podNamespaces) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.pid != nil {
		_ = p.pid.Process.Kill()
		<-p.pidEnded
		p.pid = nil
	}
	if p.shared {
		errs = append(errs, p.unmountShared())
		p.shared = false
	}
	if err := os.Remove(p.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// HoldPIDNamespace is the holder of a pod's PID namespace, its PID 1: it
// ignores the signals a process of the pod may send it (as pause does)
// and reaps the orphans the pod's containers leave. It never returns; the
// agent ends it with SIGKILL.
func HoldPIDNamespace() {
	signal.Ignore(unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-chld
	}
}
