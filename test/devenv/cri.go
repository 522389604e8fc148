package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/logging"
)

// CRINamespace is the containerd namespace of the CRI plugin: images that
// crictl should see, the sandbox image among them, are imported there.
const CRINamespace = "k8s.io"

// CNIBinDir is where Debian's containernetworking-plugins installs the CNI
// plugins (bridge, host-local, loopback).
const CNIBinDir = "/usr/lib/cni"

// criPlugins are the plugins disabledPlugins turns off and Options.CRI
// turns back on.
var criPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
}

// criReadyTimeout bounds how long Start waits for the CRI plugin to report
// RuntimeReady and NetworkReady.
const criReadyTimeout = 20 * time.Second

// criState is what a CRI bench adds to Containerd.
type criState struct {
	crictl string     // path of the crictl binary
	net    CNINetwork // the bench's pod network
	// ipForward is /proc/sys/net/ipv4/ip_forward as Start found it: the
	// bridge plugin turns forwarding on for a gateway bridge, and Stop
	// turns it off again when it was off and no other bench needs it.
	ipForward string
}

// CRIEndpoint is the CRI's gRPC endpoint, containerd's own socket.
func (c *Containerd) CRIEndpoint() string { return "unix://" + c.Address() }

// CNI returns the bench's pod network, or nil when the bench was started
// without Options.CRI.
func (c *Containerd) CNI() *CNINetwork {
	if c.cri == nil {
		return nil
	}
	n := c.cri.net
	return &n
}

// withoutCRIPlugins returns list without criPlugins.
func withoutCRIPlugins(list []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(p string) bool { return slices.Contains(criPlugins, p) })
}

// setupCRI checks the CRI tools, chooses the bench's pod network, writes the
// CNI configuration, the registry hosts and crictl's configuration under
// Dir, and returns the CRI plugins' part of containerd's configuration.
func (c *Containerd) setupCRI(o Options) (string, error) {
	st := &criState{crictl: filepath.Join(o.ToolsBin, "crictl")}
	if _, err := os.Stat(st.crictl); err != nil {
		return "", fmt.Errorf("devenv: %w (run hack/install-tools.sh)", err)
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			return "", fmt.Errorf("devenv: CNI plugin %s: %w (apt-get install containernetworking-plugins)", p, err)
		}
	}
	if b, err := os.ReadFile(ipForwardPath); err == nil {
		st.ipForward = strings.TrimSpace(string(b))
	}
	net, err := newCNINetwork(c.Dir, crc32.ChecksumIEEE([]byte(c.Dir)))
	if err != nil {
		return "", err
	}
	// A bridge of this name can only be left over from an earlier bench in
	// the same directory that was not stopped.
	if err := deleteLink(net.Bridge); err != nil {
		return "", err
	}
	st.net = net
	c.cri = st
	if err := net.writeConfList(); err != nil {
		return "", err
	}
	if err := writeRegistryHosts(c.registryHostsDir()); err != nil {
		return "", err
	}
	if err := c.writeCrictlConfig(); err != nil {
		return "", err
	}
	return criTOML(c.Dir, net, o.HuskConfig, o.VirtGuestImage), nil
}

// registryHostsDir is the CRI's registry config_path.
func (c *Containerd) registryHostsDir() string { return filepath.Join(c.Dir, "certs.d") }

// crictlConfigPath is the crictl configuration Start writes, passed with
// --config so that no /etc/crictl.yaml of the host applies.
func (c *Containerd) crictlConfigPath() string { return filepath.Join(c.Dir, "crictl.yaml") }

// PlainHandler is the CRI runtime handler of husk with no options table:
// its shims read the bench's HuskConfig through $HUSK_CONFIG, which Start
// sets in containerd's environment. It is the kind of husk entry on which
// containerd's CRI can start user-namespaced containers: the CRI hands the
// runtime their stdio owner in runc's options type, which it cannot make
// from an entry's options table.
const PlainHandler = "husk-plain"

// InlineHandler is the CRI runtime handler whose husk configuration is
// inline in containerd's config (the options table, which the CRI passes as
// the runtime option ConfigBody); it sets only the state directory,
// InlineStateDir.
const InlineHandler = "husk-inline"

// InlineStateDir is the husk state directory InlineHandler's inline
// configuration sets, for the bench rooted at dir.
func InlineStateDir(dir string) string { return filepath.Join(dir, "husk-inline-state") }

// VirtHandler is the CRI runtime handler that runs each pod in a VM of its
// own: husk with default_handler = "virt" on the qemu hypervisor (the one
// that runs here, with TCG where KVM cannot run a guest), configured
// inline. A bench has it when started with Options.VirtGuestImage.
const VirtHandler = "husk-vm"

// VirtShimHandler runs VM pods as VirtHandler does, under containerd's
// sandbox API (sandboxer "shim"): no pause container, the shim creates
// the pod.
const VirtShimHandler = "husk-vm-shim"

// VirtStateDir is the husk state directory of VirtHandler on the bench
// rooted at dir, and VirtCacheDir its root filesystem image cache.
func VirtStateDir(dir string) string { return filepath.Join(dir, "husk-vm-state") }
func VirtCacheDir(dir string) string { return filepath.Join(dir, "husk-vm-cache") }

// VirtBootTimeout and VirtAgentTimeout are VirtHandler's
// virt.boot_timeout and virt.agent_timeout: generous, as several VMs
// emulated by TCG share the host's two CPUs with other tests (five pods
// starting at once had an agent's CreateContainer take more than the
// default 10 s).
const (
	VirtBootTimeout  = "300s"
	VirtAgentTimeout = "60s"
)

// criTOML renders the CRI plugins' configuration (containerd config version
// 3 keys, as of v2.4.2) for a bench rooted at dir; virtGuest, when set,
// adds VirtHandler with that guest image.
//
// Nothing in it reaches outside dir but the CNI plugin binaries: network
// namespaces are mounted under the CRI's state dir, CDI specs are looked for
// under dir, and the registry hosts directory sends every registry to a port
// where nothing listens (writeRegistryHosts).
func criTOML(dir string, net CNINetwork, huskConfig, virtGuest string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("\n[plugins.'io.containerd.cri.v1.images']\n")
	w("  snapshotter = 'overlayfs'\n")
	w("  [plugins.'io.containerd.cri.v1.images'.pinned_images]\n")
	w("    sandbox = '%s'\n", PauseRef)
	w("  [plugins.'io.containerd.cri.v1.images'.registry]\n")
	w("    config_path = '%s'\n", filepath.Join(dir, "certs.d"))

	w("\n[plugins.'io.containerd.cri.v1.runtime']\n")
	w("  enable_selinux = false\n")
	w("  netns_mounts_under_state_dir = true\n")
	// The CRI gives sandboxes oom_score_adj -998, which needs
	// CAP_SYS_RESOURCE; sandboxed CI hosts lack it. Clamp to containerd's.
	w("  restrict_oom_score_adj = true\n")
	w("  cdi_spec_dirs = ['%s']\n", filepath.Join(dir, "cdi"))
	w("  [plugins.'io.containerd.cri.v1.runtime'.cni]\n")
	w("    bin_dirs = ['%s']\n", CNIBinDir)
	w("    conf_dir = '%s'\n", net.ConfDir)
	w("    max_conf_num = 1\n")
	w("  [plugins.'io.containerd.cri.v1.runtime'.containerd]\n")
	w("    default_runtime_name = 'runc'\n")
	w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n")
	w("      runtime_type = 'io.containerd.runc.v2'\n")
	w("      sandboxer = 'podsandbox'\n")
	w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n")
	w("        SystemdCgroup = false\n")
	w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.husk]\n")
	w("      runtime_type = 'io.containerd.husk.v2'\n")
	w("      sandboxer = 'podsandbox'\n")
	if huskConfig != "" {
		w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.husk.options]\n")
		w("        ConfigPath = '%s'\n", huskConfig)
	}
	// husk with no options table: HuskConfig through $HUSK_CONFIG.
	w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]\n", PlainHandler)
	w("      runtime_type = 'io.containerd.husk.v2'\n")
	w("      sandboxer = 'podsandbox'\n")
	// The same runtime with its husk configuration inline: no ConfigPath,
	// so the CRI sends the options table to the shim as ConfigBody.
	w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]\n", InlineHandler)
	w("      runtime_type = 'io.containerd.husk.v2'\n")
	w("      sandboxer = 'podsandbox'\n")
	w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s.options.runtime]\n", InlineHandler)
	w("        state_dir = '%s'\n", InlineStateDir(dir))
	if virtGuest != "" {
		// Inline too: the CRI passes the options table as ConfigBody. The
		// same VM pods under either sandboxer (docs/RATIONALE.md).
		for _, h := range []struct{ name, sandboxer string }{{VirtHandler, "podsandbox"}, {VirtShimHandler, "shim"}} {
			w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]\n", h.name)
			w("      runtime_type = 'io.containerd.husk.v2'\n")
			w("      sandboxer = '%s'\n", h.sandboxer)
			if h.sandboxer == "shim" {
				w("      disable_pause_image_pull = true\n")
			}
			w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s.options.runtime]\n", h.name)
			w("        default_handler = 'virt'\n")
			w("        state_dir = '%s'\n", VirtStateDir(dir))
			w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s.options.virt]\n", h.name)
			w("        hypervisor = 'qemu'\n")
			w("        guest_image = '%s'\n", virtGuest)
			w("        boot_timeout = '%s'\n", VirtBootTimeout)
			w("        agent_timeout = '%s'\n", VirtAgentTimeout)
			w("        rootfs_cache = '%s'\n", VirtCacheDir(dir))
		}
	}

	w("\n[plugins.'io.containerd.grpc.v1.cri']\n")
	w("  disable_tcp_service = true\n")
	w("  stream_server_address = '127.0.0.1'\n")
	w("  stream_server_port = '0'\n")
	return b.String()
}

// writeRegistryHosts writes the CRI's registry hosts directory: one
// _default/hosts.toml, which applies to every registry host, naming a server
// on a local port where nothing listens. A pull the bench did not expect
// (a missing image, a typo in a ref) then fails at once, saying so, instead
// of reaching the network.
func writeRegistryHosts(dir string) error {
	d := filepath.Join(dir, "_default")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	const hosts = "# test/devenv: the bench pulls nothing; every registry resolves here.\n" +
		"server = '" + NoRegistry + "'\n"
	if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	return nil
}

// NoRegistry is the registry server every registry host resolves to on a
// CRI bench: port 1 of the loopback, where nothing listens.
const NoRegistry = "http://127.0.0.1:1"

// writeCrictlConfig writes crictl.yaml with the bench's endpoints.
func (c *Containerd) writeCrictlConfig() error {
	text := fmt.Sprintf("runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: %d\ndebug: false\npull-image-on-create: false\n",
		c.CRIEndpoint(), c.CRIEndpoint(), int(crictlTimeout/time.Second))
	if err := os.WriteFile(c.crictlConfigPath(), []byte(text), 0o644); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	return nil
}

// crictlTimeout is crictl's per-call timeout (its default is 2s, short for
// a RunPodSandbox on a loaded machine). A VM pod's RunPodSandbox waits for
// its VM's boot, which VirtHandler allows VirtBootTimeout: in CI, five VM
// pods booting at once under TCG beside the nested harness took one runp
// past 60 s, and crictl giving up cancelled a start that was going well.
const crictlTimeout = 6 * time.Minute

// CrictlCmd returns `crictl --config <Dir>/crictl.yaml --runtime-endpoint
// unix://<sock> --image-endpoint unix://<sock> --timeout 60s args...` for
// callers that need stdin, a tty or streaming output. CRI-related variables
// of the caller's environment are dropped so they cannot redirect it. It
// panics on a bench started without Options.CRI.
func (c *Containerd) CrictlCmd(ctx context.Context, args ...string) *exec.Cmd {
	if c.cri == nil {
		panic("devenv: CrictlCmd on a bench started without Options.CRI")
	}
	base := []string{
		"--config", c.crictlConfigPath(),
		"--runtime-endpoint", c.CRIEndpoint(),
		"--image-endpoint", c.CRIEndpoint(),
		"--timeout", crictlTimeout.String(),
	}
	cmd := exec.CommandContext(ctx, c.cri.crictl, append(base, args...)...)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Crictl runs crictl with args and returns its output. A non-zero exit is an
// error carrying stderr; stdout and stderr are returned in any case.
func (c *Containerd) Crictl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := c.CrictlCmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String(), nil
}

// waitCRIReady polls `crictl info` until the CRI reports RuntimeReady and
// NetworkReady (the CNI configuration is loaded), or criReadyTimeout passes.
func (c *Containerd) waitCRIReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, criReadyTimeout)
	defer cancel()
	var last string
	for {
		out, _, err := c.Crictl(ctx, "info", "-o", "json")
		if err == nil {
			var info struct {
				Status struct {
					Conditions []struct {
						Type    string `json:"type"`
						Status  bool   `json:"status"`
						Reason  string `json:"reason"`
						Message string `json:"message"`
					} `json:"conditions"`
				} `json:"status"`
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				return fmt.Errorf("devenv: crictl info: %w", err)
			}
			// Only these two: on a cgroup v1 host containerd also reports
			// ContainerdHasNoDeprecationWarnings false, for good.
			ready := 0
			last = ""
			for _, cond := range info.Status.Conditions {
				if cond.Type != "RuntimeReady" && cond.Type != "NetworkReady" {
					continue
				}
				if cond.Status {
					ready++
				} else {
					last += fmt.Sprintf("%s: %s %s; ", cond.Type, cond.Reason, cond.Message)
				}
			}
			if ready == 2 {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devenv: the CRI plugin is not ready after %s (%s); the end of containerd's log:\n%s", criReadyTimeout, last, c.logTail(30))
		case <-c.exited:
			return fmt.Errorf("devenv: containerd exited (%v); the end of its log:\n%s", c.waitErr, c.logTail(30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removePods stops and removes every pod through the CRI, so that the CNI
// plugins release the pods' addresses and veths and the CRI unmounts their
// network namespaces while containerd still runs. Errors are logged: Stop
// deals with what survives.
func (c *Containerd) removePods(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, _, err := c.Crictl(ctx, "rmp", "--all", "--force"); err != nil {
		logging.L(ctx).Warn("devenv: remove pods", "error", err)
	}
}

// cleanupCRI removes what the CNI plugins left on the host once containerd
// is gone: the bench's bridge (the bridge plugin never deletes it), libcni's
// cached results for the bench's network, and IPv4 forwarding when the
// bridge plugin turned it on for this bench alone.
func (c *Containerd) cleanupCRI(ctx context.Context) error {
	if c.cri == nil {
		return nil
	}
	var errs []error
	if err := deleteLink(c.cri.net.Bridge); err != nil {
		errs = append(errs, err)
	}
	if err := removeCNICache(c.cri.net.Name, sandboxIDs(c.Dir)); err != nil {
		errs = append(errs, err)
	}
	now, _ := os.ReadFile(ipForwardPath)
	if c.cri.ipForward == "0" && strings.TrimSpace(string(now)) == "1" {
		others, err := linksWithPrefix(bridgePrefix)
		switch {
		case err != nil:
			errs = append(errs, err)
		case len(others) > 0:
			logging.L(ctx).Debug("devenv: leaving ip_forward on for other benches", "bridges", others)
		default:
			if err := os.WriteFile(ipForwardPath, []byte("0\n"), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("devenv: restore ip_forward: %w", err))
			}
		}
	}
	c.cri.ipForward = "" // once: a second Stop must not undo a later bench's
	return errors.Join(errs...)
}

// ipForwardPath is the host's IPv4 forwarding switch.
const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// NetNSDir is where the CRI plugin of a CRI bench mounts its pods' network
// namespaces (netns_mounts_under_state_dir), instead of /var/run/netns.
func (c *Containerd) NetNSDir() string {
	return filepath.Join(c.Dir, "state", "io.containerd.grpc.v1.cri", "netns")
}

// Mounts returns the mount points at or below Dir, deepest first: rootfs,
// shm and network namespace mounts of running pods and tasks.
func (c *Containerd) Mounts() ([]string, error) {
	dir := c.Dir
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return mountsUnder(dir)
}

// CtrIn is Ctr in namespace ns instead of Namespace; CRINamespace shows
// what the CRI plugin created (tasks, containers, images).
func (c *Containerd) CtrIn(ctx context.Context, ns string, args ...string) (stdout, stderr string, err error) {
	return c.ctrIn(ctx, ns, args...)
}
