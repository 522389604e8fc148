// Package devenv is husk's development bench: a private containerd started
// from the repository's .tools/bin, and busybox test images built locally
// from the host's static busybox, with no registry. The end-to-end tests and
// `huskctl dev` use it.
package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/huskrt/husk/internal/logging"
)

// DefaultNamespace is the containerd namespace Ctr uses unless
// Containerd.Namespace is changed.
const DefaultNamespace = "husk-test"

// startTimeout bounds how long Start waits for containerd to answer.
const startTimeout = 20 * time.Second

// stopTimeout bounds how long Stop waits for containerd after SIGTERM before
// it sends SIGKILL.
const stopTimeout = 10 * time.Second

// Options configures Start.
type Options struct {
	// Dir is the root for everything: config, state, sockets, log, images.
	// Keep it short (unix socket paths are limited to 108 bytes, shim socket
	// dirs to 42). Empty means a new directory under os.TempDir(). Stop
	// removes it, and so does a failed Start.
	Dir string
	// ToolsBin holds containerd, ctr and containerd-shim-runc-v2. Empty
	// means <repo>/.tools/bin.
	ToolsBin string
	// ShimDir holds containerd-shim-husk-v2; it goes first in containerd's
	// PATH, which is how containerd finds shims. Empty means <repo>/bin.
	ShimDir string
	// Env is added to containerd's environment; shims inherit it
	// (e.g. HUSK_CONFIG=...).
	Env []string
	// LogLevel is containerd's log level; empty means debug.
	LogLevel string
	// CRI enables containerd's CRI plugin (otherwise disabled) for crictl:
	// runtime handlers runc and husk, a CNI bridge network of the bench's
	// own (CNI), the locally built pause image as the sandbox image
	// (imported by Start), and no registry (every pull fails at once). It
	// needs crictl in ToolsBin and the CNI plugins in CNIBinDir.
	CRI bool
	// HuskConfig, with CRI, is the husk config file given to the husk
	// runtime handler as its runtime option ConfigPath, as
	// examples/kubernetes/containerd-husk.toml does.
	HuskConfig string
	// VirtGuestImage, with CRI, is a guest image directory (make guest):
	// the bench then has runtime handler VirtHandler, whose pods run in
	// QEMU VMs booted from it.
	VirtGuestImage string
	// Imports are containerd config files (drop-ins) the bench's config
	// imports, merged over it as containerd merges /etc/containerd/conf.d
	// (e.g. examples/kubernetes/containerd-husk.toml). Absolute paths.
	Imports []string

	// allPlugins leaves disabledPlugins enabled, for the test that checks
	// they exist.
	allPlugins bool
}

// Containerd is a running private containerd.
type Containerd struct {
	// Dir is the bench's root directory (Options.Dir, made absolute).
	Dir string
	// Namespace is the containerd namespace Ctr and CtrCmd use.
	Namespace string

	ctr     string        // path of the ctr binary
	cri     *criState     // nil unless started with Options.CRI
	cmd     *exec.Cmd     // the containerd process
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // cmd.Wait's result; valid once exited is closed
}

// Address is containerd's gRPC socket.
func (c *Containerd) Address() string { return filepath.Join(c.Dir, "c.sock") }

// LogPath is the file containerd's output goes to.
func (c *Containerd) LogPath() string { return filepath.Join(c.Dir, "containerd.log") }

// ConfigPath is the containerd configuration file Start wrote.
func (c *Containerd) ConfigPath() string { return filepath.Join(c.Dir, "containerd.toml") }

// Pid is containerd's process id.
func (c *Containerd) Pid() int { return c.cmd.Process.Pid }

// Start writes a containerd configuration under o.Dir, starts containerd and
// waits until it answers `ctr version`. On failure everything it created is
// removed again.
func Start(ctx context.Context, o Options) (_ *Containerd, err error) {
	if o.ToolsBin == "" || o.ShimDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		if o.ToolsBin == "" {
			o.ToolsBin = filepath.Join(root, ".tools", "bin")
		}
		if o.ShimDir == "" {
			o.ShimDir = filepath.Join(root, "bin")
		}
	}
	// Absolute, since containerd runs in Dir and finds shims through PATH.
	if o.ShimDir, err = filepath.Abs(o.ShimDir); err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	if o.ToolsBin, err = filepath.Abs(o.ToolsBin); err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	containerdBin := filepath.Join(o.ToolsBin, "containerd")
	if _, err := os.Stat(containerdBin); err != nil {
		return nil, fmt.Errorf("devenv: %w (run hack/install-tools.sh)", err)
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "husk-"); err != nil {
			return nil, fmt.Errorf("devenv: %w", err)
		}
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	c := &Containerd{
		Dir:       o.Dir,
		Namespace: DefaultNamespace,
		ctr:       filepath.Join(o.ToolsBin, "ctr"),
		exited:    make(chan struct{}),
	}
	defer func() {
		if err != nil {
			_ = c.Stop(context.WithoutCancel(ctx))
		}
	}()
	if len(c.Address()) >= 100 {
		return nil, fmt.Errorf("devenv: dir %s is too long for a unix socket path", c.Dir)
	}
	disabled := disabledPlugins
	var criSection string
	if o.CRI {
		if criSection, err = c.setupCRI(o); err != nil {
			return nil, err
		}
		disabled = withoutCRIPlugins(disabled)
	}
	if o.allPlugins {
		disabled = nil
	}
	cfg, err := writeConfig(c.Dir, o.LogLevel, disabled, criSection, o.Imports...)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(c.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	defer logf.Close() // containerd has its own copy once started

	cmd := exec.Command(containerdBin, "--config", cfg)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = containerdEnv(o)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C at the terminal reaches huskctl, which
		// then stops containerd in order, not containerd directly.
		Setpgid: true,
		// Die with the test binary or huskctl rather than outlive it.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := c.startAndWait(cmd); err != nil {
		return nil, fmt.Errorf("devenv: start containerd: %w", err)
	}
	c.cmd = cmd
	t0 := time.Now()
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	if o.CRI {
		if err := c.waitCRIReady(ctx); err != nil {
			return nil, err
		}
		if err := c.ImportPause(ctx); err != nil {
			return nil, err
		}
	}
	logging.L(ctx).Debug("containerd ready", "pid", c.Pid(), "address", c.Address(), "cri", o.CRI, "took", time.Since(t0))
	return c, nil
}

// startAndWait starts cmd from a goroutine locked to its OS thread, which
// then waits for the process. Pdeathsig fires when the *thread* that started
// the child exits, and Go ends threads whose goroutine exits while locked
// (test helpers entering network namespaces do that); a thread of our own,
// alive exactly as long as containerd, makes Pdeathsig mean "parent process
// died".
func (c *Containerd) startAndWait(cmd *exec.Cmd) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			runtime.UnlockOSThread()
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
		// Stay locked: the thread exits with this goroutine, after containerd.
	}()
	return <-started
}

// containerdEnv is the environment for containerd and, through it, the shims:
// ShimDir first in PATH (shims are looked up in PATH), then ToolsBin (the runc
// shim and the runc it runs), then the inherited PATH.
func containerdEnv(o Options) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"PATH=" + o.ShimDir + ":" + o.ToolsBin + ":" + path}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	if o.CRI && o.HuskConfig != "" {
		// For PlainHandler, whose shims get no ConfigPath.
		env = append(env, "HUSK_CONFIG="+o.HuskConfig)
	}
	return append(env, o.Env...)
}

// waitReady polls `ctr version` until containerd answers, it exits, or
// startTimeout passes.
func (c *Containerd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if _, err := os.Stat(c.Address()); err == nil {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, _, lastErr = c.Ctr(pctx, "version")
			pcancel()
			if lastErr == nil {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("devenv: containerd exited during start (%v); the end of its log:\n%s", c.waitErr, c.logTail(30))
		case <-ctx.Done():
			return fmt.Errorf("devenv: containerd did not answer within %s (last: %v); the end of its log:\n%s", startTimeout, lastErr, c.logTail(30))
		case <-tick.C:
		}
	}
}

// logTail returns the last n lines of containerd's log.
func (c *Containerd) logTail(n int) string {
	b, err := os.ReadFile(c.LogPath())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CtrCmd returns `ctr --address <sock> --namespace <ns> args...` for callers
// that need stdin, a tty or streaming output. CONTAINERD_* variables of the
// caller's environment are dropped so they cannot redirect it, and ctr's
// per-call DEPRECATION warnings (cgroup v1 hosts) are suppressed so that
// stderr holds only what the command itself says.
func (c *Containerd) CtrCmd(ctx context.Context, args ...string) *exec.Cmd {
	return c.ctrCmdIn(ctx, c.Namespace, args...)
}

func (c *Containerd) ctrCmdIn(ctx context.Context, ns string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.Address(), "--namespace", ns}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONTAINERD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1")
	// ctr's children (none today) must not keep Wait hanging after ctx ends.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Ctr runs ctr with args and returns its output. A non-zero exit is an error
// carrying stderr; stdout and stderr are returned in any case.
func (c *Containerd) Ctr(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return c.ctrIn(ctx, c.Namespace, args...)
}

func (c *Containerd) ctrIn(ctx context.Context, ns string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := c.ctrCmdIn(ctx, ns, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String(), nil
}

// Stop removes the bench: it removes the pods through the CRI (a CRI
// bench), deletes the tasks and containers left in every namespace, SIGTERMs
// containerd (SIGKILL after stopTimeout), kills shims still serving this
// containerd, removes what CNI left on the host (cleanupCRI), unmounts
// everything under Dir and removes Dir. It is safe to call more than once.
func (c *Containerd) Stop(ctx context.Context) error {
	log := logging.L(ctx)
	var errs []error
	if c.cmd != nil {
		select {
		case <-c.exited:
		default:
			if c.cri != nil {
				c.removePods(ctx)
			}
			c.removeTasks(ctx)
			if err := c.terminate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c.killShims(ctx)
	if err := c.cleanupCRI(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(c.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, fmt.Errorf("devenv: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("devenv stop", "error", err)
		return err
	}
	return nil
}

// terminate ends containerd by pid: SIGTERM, then SIGKILL after stopTimeout.
func (c *Containerd) terminate() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.exited:
		return fmt.Errorf("devenv: containerd ignored SIGTERM for %s and was killed", stopTimeout)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("devenv: containerd (pid %d) survives SIGKILL", c.Pid())
	}
}

// Restart stops containerd with SIGTERM, leaving its tasks and their shims
// running, and starts it again on the same configuration, as an upgrade or
// a crash-restart of containerd would.
func (c *Containerd) Restart(ctx context.Context) error {
	if err := c.terminate(); err != nil {
		return err
	}
	logf, err := os.OpenFile(c.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	defer logf.Close()
	old := c.cmd
	cmd := exec.Command(old.Path, old.Args[1:]...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = old.Dir, old.Env, old.SysProcAttr
	cmd.Stdout, cmd.Stderr = logf, logf
	c.exited, c.waitErr = make(chan struct{}), nil
	if err := c.startAndWait(cmd); err != nil {
		return fmt.Errorf("devenv: restart containerd: %w", err)
	}
	c.cmd = cmd
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	if c.cri != nil {
		return c.waitCRIReady(ctx)
	}
	return nil
}
