package shim

import (
	"context"
	"log/slog"
	"os"

	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/reaper"
	"github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/handler"
)

// Run is the shim binary's whole life: it registers the task service with
// the given handlers and hands control to containerd's pkg/shim, which
// parses the flags and runs start, delete or the server.
func Run(ctx context.Context, handlers ...handler.Handler) {
	if wantsVersion(os.Args[1:]) {
		printVersion(os.Stdout, os.Args[0], handlers...)
		os.Exit(0)
	}
	mgr := runtime.NewManager(handlers...)
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pub, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			sd, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			level := new(slog.LevelVar)
			if opts, ok := ic.Context.Value(shim.OptsKey{}).(shim.Opts); ok && opts.Debug {
				level.Set(slog.LevelDebug)
			}
			// pkg/shim has pointed stderr at containerd's log pipe.
			lctx := logging.WithLogger(ic.Context, logging.NewText(os.Stderr, level).With("runtime", RuntimeName))
			// The working directory is the first container's bundle,
			// which containerd removes with that container while the shim
			// may serve others (a pod's, a group's), and libcontainer
			// resolves paths against it: leave it, now that pkg/shim has
			// opened the bundle's log.
			if err := os.Chdir("/"); err != nil {
				return nil, err
			}
			// Orphans of host-PID containers reparent to the shim (a
			// subreaper): reap those nobody else waits for.
			go reaper.Run(lctx)
			s := newService(lctx, mgr, pub.(shim.Publisher), sd.(shutdown.Service), level)
			s.started(fromStarter())
			s.containerd = ic.Properties[plugins.PropertyGRPCAddress]
			return s, nil
		},
	})
	// libcontainer waits for its own children; a global reaper would steal
	// their exit statuses.
	shim.RunShim(ctx, Manager{handlers: mgr}, func(c *shim.Config) { c.NoReaper = true })
}
