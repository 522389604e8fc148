// Package shim is husk's containerd shim v2: the `start` and `delete`
// commands (Manager) and the ttrpc task service, built on containerd's
// pkg/shim so both the 2.3+ bootstrap protocol and the legacy one work.
package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/linux"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/runtime/resource/cgroups"
	"github.com/huskrt/husk/version"
)

// RuntimeName is the runtime type containerd knows husk by.
const RuntimeName = "io.containerd.husk.v2"

// Manager implements the shim binary's commands other than serving: start
// (spawn the long-lived shim, one per pod, and hand its address to
// containerd), delete (clean up after a shim that died) and info.
type Manager struct {
	handlers *runtime.Manager
}

// Name returns the runtime type.
func (Manager) Name() string { return RuntimeName }

// Start launches the shim server for a new task and returns its address. If
// a shim already serves this id, its address is returned.
func (Manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (_ *bootapi.BootstrapResult, retErr error) {
	id := params.GetInstanceID()
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	// One shim serves a whole pod, or io.husk.group: its socket is named
	// after the sandbox or group, and the later containers get the address
	// of the running shim.
	// A pod under containerd's sandbox API (sandboxer "shim") comes as a
	// bundle without a spec: the pod's config arrives with CreateSandbox.
	ann, err := runtime.LoadAnnotations(".")
	switch {
	case errdefs.IsNotFound(err):
		// CreateSandbox carries no runtime options: keep them for it.
		// (Only such a bundle needs them: a container's Create has its own.)
		exts := make([]*anypb.Any, 0, len(params.GetExtensions()))
		for _, e := range params.GetExtensions() {
			exts = append(exts, e.GetValue())
		}
		if err := saveBundleOptions(".", exts); err != nil {
			return nil, fmt.Errorf("keeping the runtime options: %w", err)
		}
	case err != nil:
		return nil, err
	}
	group, shared, err := runtime.ShimGroup(id, ann)
	if err != nil {
		return nil, err
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	// A group's socket is named apart from its shim's -id: pkg/shim removes
	// the socket named after the -id as the shim exits, which must not be
	// that of the group's next shim (group.go).
	key := group
	if runtime.IsGroup(group) {
		key = group + "/socket"
	}
	address, err := shim.CreateSocketAddress(ctx, socketDir, params.GetContainerdGrpcAddress(), key, false)
	if err != nil {
		return nil, err
	}
	result := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc", Address: address}
	l, err := listen(ctx, address, id, shared)
	switch {
	case err != nil:
		return nil, err
	case l == nil: // the running shim serves it
		return result, nil
	}
	defer func() {
		if retErr != nil {
			_ = removeIfDead(address) // another start command's may be there by now
		}
	}()
	// The socket file must outlive this process's listener: the shim
	// serves on the inherited fd.
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		return nil, err
	}
	defer f.Close()

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	args := []string{"-namespace", ns, "-id", group, "-address", params.GetContainerdGrpcAddress()}
	if params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2", envFirst+"="+id, envSocket+"="+address)
	cmd.ExtraFiles = []*os.File{f} // fd 3: the ttrpc listener
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting shim: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = cmd.Process.Kill()
		}
	}()
	// The shim outlives this process; reap it if it dies before we exit.
	go func() { _ = cmd.Wait() }()
	if err := shim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("adjusting shim OOM score: %w", err)
	}
	return result, nil
}

// Stop is the `delete` command: containerd runs it in a container's bundle
// when the shim serving it died. It finds the container's sandbox state
// through the bundle, has the container's handler remove what is left of it
// (processes, cgroups, mounts, state) and updates the sandbox's record,
// removing it with the sandbox's last container.
func (m Manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return shim.StopStatus{}, err
	}
	bundle, err := stopBundle(ctx)
	if err != nil {
		return shim.StopStatus{}, err
	}
	st := shim.StopStatus{ExitedAt: time.Now(), ExitStatus: 128 + int(syscall.SIGKILL)}
	ref, err := persist.ReadBundleRef(bundle)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			return st, err
		}
		// Created by a shim that died before recording it: look where
		// the configuration says state lives.
		cfg, err := config.Load(config.Path(""))
		if err != nil {
			return st, err
		}
		ref = persist.BundleRef{SandboxID: id, StateDir: persist.Dir(cfg.Runtime.StateDir, ns, id)}
	}
	// The handler that made the container, from the record (read under
	// the lock below, again, to update it).
	handler := linux.Name
	if rec, err := persist.Read(ref.StateDir); err == nil {
		handler = rec.Handler
		for _, c := range rec.Containers {
			if c.ID == id {
				handler = c.Handler
			}
		}
	}
	h, ok := m.handlers.Handler(handler)
	if !ok {
		return st, fmt.Errorf("container %s was created by handler %q, not in this build: %w", id, handler, errdefs.ErrNotImplemented)
	}
	if st.Pid, err = h.Cleanup(ctx, ref.StateDir, id, bundle); err != nil {
		return st, err
	}
	// The shim is dead: its socket would stay behind. (Only if nothing
	// answers on it: delete never pulls the socket from under a live shim.)
	if address := shimAddress(); address != "" {
		_ = removeIfDead(address)
	}
	return st, persist.Update(ref.StateDir, func(rec *persist.Sandbox) (bool, error) {
		if rec == nil {
			return false, nil
		}
		rec.RemoveContainer(id)
		if len(rec.Containers) > 0 {
			return false, nil
		}
		// The pod's last container: what its handlers' sandboxes hold (a
		// VM's process) goes with it.
		for _, name := range sandboxHandlers(rec.Handler, h.Name()) {
			sh, ok := m.handlers.Handler(name)
			if !ok {
				return false, fmt.Errorf("sandbox %s was set up by handler %q, not in this build: %w", rec.ID, name, errdefs.ErrNotImplemented)
			}
			if err := sh.CleanupSandbox(ctx, ref.StateDir); err != nil {
				return false, err
			}
		}
		if rec.ShimCgroup != "" {
			if err := cgroups.ReleaseShim(rec.ShimCgroup, 0); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

// stopBundle is the bundle of the container `delete` is about: the one
// containerd names with -bundle (pkg/shim passes it in the context), else
// the working directory it runs the command in. The working directory can
// be gone by then (a task whose create failed): then the flag, or an
// error saying so.
func stopBundle(ctx context.Context) (string, error) {
	if o, ok := ctx.Value(shim.OptsKey{}).(shim.Opts); ok && o.BundlePath != "" {
		return o.BundlePath, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("the container's bundle: no -bundle and no working directory: %w", err)
	}
	return wd, nil
}

// sandboxHandlers lists, once each, the handlers whose sandboxes a pod may
// hold: the pod's own and its last container's (a Wasm container in a
// Linux pod).
func sandboxHandlers(pod, last string) []string {
	if pod == last || last == "" {
		return []string{pod}
	}
	return []string{pod, last}
}

// Info describes the runtime to containerd (`-info`): its name, version and
// the OCI features document of the handler that the configuration selected
// by options (the runtime entry's options, as Create reads them) runs pods
// with by default. containerd's CRI reads recursive read-only mount and
// user namespace support for the entry from it (features.go).
func (Manager) Info(ctx context.Context, options io.Reader) (*types.RuntimeInfo, error) {
	opts, err := readInfoOptions(options)
	if err != nil {
		return nil, err
	}
	info, err := runtimeInfo(opts)
	if err != nil {
		return nil, err
	}
	info.Name = RuntimeName
	info.Version = &types.RuntimeVersion{Version: version.Version, Revision: version.Revision}
	return info, nil
}

var _ shim.Shim = Manager{}

// shimAddress returns the address of the shim that served the bundle in the
// working directory, from containerd's bootstrap.json (2.x) or its older
// address file; "" when neither says.
func shimAddress() string {
	if b, err := os.ReadFile("bootstrap.json"); err == nil {
		var params map[string]any
		if json.Unmarshal(b, &params) == nil {
			for _, k := range []string{"address", "Address"} {
				if a, ok := params[k].(string); ok && a != "" {
					return a
				}
			}
		}
	}
	if a, err := shim.ReadAddress("address"); err == nil {
		return a
	}
	return ""
}
