package devenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// disabledPlugins are the containerd v2.4.2 plugin URIs the bench turns off.
// containerd silently ignores a URI that names no plugin, so every entry was
// checked against `ctr plugins ls` of v2.4.2; TestStartDisablesPlugins keeps
// the list honest when containerd is upgraded.
var disabledPlugins = []string{
	// CRI: we drive containerd with ctr, never kubelet; CRI also wants CNI.
	// Options.CRI turns these four back on (criPlugins).
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
	// Snapshotters and differs we never use (overlayfs and native stay).
	"io.containerd.snapshotter.v1.blockfile",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.snapshotter.v1.erofs",
	"io.containerd.differ.v1.erofs",
	"io.containerd.mount-handler.v1.erofs",
	// Tracing and NRI: nothing to export to, no NRI plugins to run.
	"io.containerd.internal.v1.tracing",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.nri.v1.nri",
	// Host-global paths: opt creates /opt/containerd, bindir runs whatever
	// image verifiers the host has in /opt/containerd/image-verifier/bin.
	"io.containerd.internal.v1.opt",
	"io.containerd.image-verifier.v1.bindir",
}

// maxShimSocketDir is containerd's limit on the shim socket_dir length
// (core/runtime/v2/socket_linux.go), so that shim socket paths fit sun_path.
const maxShimSocketDir = 42

// configTOML renders the containerd configuration for a bench rooted at dir,
// with the given plugins disabled.
//
// It is version 3, which containerd 2.0 to 2.4 all accept (2.4 migrates it to
// version 4 in memory and logs one warning), so ToolsBin may point at any
// containerd 2.x. imports lists only the given files (Options.Imports) so
// that no drop-in from /etc/containerd/conf.d leaks into the bench.
func configTOML(dir, logLevel string, disabled []string, imports ...string) (string, error) {
	for _, p := range append([]string{dir}, imports...) {
		if strings.ContainsAny(p, "'\n\r") {
			return "", fmt.Errorf("devenv: path %q contains a quote or newline", p)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version = 3\n")
	fmt.Fprintf(&b, "root = '%s'\n", filepath.Join(dir, "root"))
	fmt.Fprintf(&b, "state = '%s'\n", filepath.Join(dir, "state"))
	fmt.Fprintf(&b, "imports = [")
	for i, p := range imports {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "'%s'", p)
	}
	fmt.Fprintf(&b, "]\n")
	fmt.Fprintf(&b, "disabled_plugins = [\n")
	for _, p := range disabled {
		fmt.Fprintf(&b, "  '%s',\n", p)
	}
	fmt.Fprintf(&b, "]\n\n")
	fmt.Fprintf(&b, "[grpc]\n  address = '%s'\n\n", filepath.Join(dir, "c.sock"))
	fmt.Fprintf(&b, "[ttrpc]\n  address = '%s'\n\n", filepath.Join(dir, "c.sock.ttrpc"))
	fmt.Fprintf(&b, "[debug]\n  level = '%s'\n", logLevel)
	// Disabled, but pointed into dir as well, so that a bench started with
	// them enabled (TestDisabledPluginsExist) still touches nothing outside.
	fmt.Fprintf(&b, "\n[plugins.'io.containerd.internal.v1.opt']\n  path = '%s'\n", filepath.Join(dir, "opt"))
	fmt.Fprintf(&b, "\n[plugins.'io.containerd.image-verifier.v1.bindir']\n  bin_dir = '%s'\n", filepath.Join(dir, "image-verifier"))
	// Shim sockets go under dir too when the path is short enough; otherwise
	// containerd's default (/run/containerd/s) is used, where the shims remove
	// their sockets themselves.
	if s := filepath.Join(dir, "s"); len(s) <= maxShimSocketDir {
		fmt.Fprintf(&b, "\n[plugins.'io.containerd.shim.v1.manager']\n  socket_dir = '%s'\n", s)
	}
	return b.String(), nil
}

// writeConfig writes the configuration, followed by extra (more plugin
// sections, e.g. criTOML's), to <dir>/containerd.toml.
func writeConfig(dir, logLevel string, disabled []string, extra string, imports ...string) (string, error) {
	text, err := configTOML(dir, logLevel, disabled, imports...)
	if err != nil {
		return "", err
	}
	text += extra
	path := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("devenv: write containerd config: %w", err)
	}
	return path, nil
}
