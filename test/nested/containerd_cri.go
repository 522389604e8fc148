package nested

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/huskrt/husk/internal/cpio"
	"github.com/huskrt/husk/test/devenv"
)

// The CRI in a containerd run. With ContainerdConfig.CRI set, the outer
// guest's containerd runs its CRI plugin as a node's does, and a scenario
// drives it with crictl (/etc/crictl.yaml points at containerd's socket):
//
//   - the runtime handler CRIVMHandler is husk with default_handler =
//     "virt" on husk's own VMM (/etc/husk/cri-vm.toml: DefaultHuskConfig
//     with the VM handler as default), podsandbox sandboxer, as
//     test/devenv's husk-vm is on the host's qemu backend;
//   - with CRIConfig.Runc, the handler "runc" too (runc and
//     containerd-shim-runc-v2 from .tools/bin), the baseline of the bench;
//   - the CNI network CRINetwork: Debian's bridge plugin (bridge
//     CRIBridge, gateway .1 of CRISubnet) with host-local addresses and
//     containerd's own loopback network, the plugins under /usr/lib/cni
//     with their libraries; the outer kernel's modules for a bridge and a
//     veth pair, and tc's ingress, u32 and mirred (husk's tap redirect);
//   - the sandbox image devenv.PauseRef (the repository's pause program,
//     built by devenv) and the busybox image, imported into the CRI's
//     namespace (devenv.CRINamespace) before the scenario runs;
//   - crictl (static) at /bin/crictl.
//
// The scenario's library adds cri_check_clean: no pod, container, task,
// shim or VMM process, mount, husk state, network namespace, veth or
// pod cgroup left.

// CRIVMHandler is the CRI runtime handler of husk's VM pods in the outer
// guest.
const CRIVMHandler = "husk-vm"

// CRISubnet is the outer guest's pod network; CRIBridge its bridge.
const (
	CRISubnet = "10.214.0.0/24"
	CRIBridge = "huskcni0"
	criPrefix = "10.214.0."
)

// criModules are the outer kernel's modules a CRI pod's network needs,
// in dependency order: the bridge plugin's bridge and veth pair, then tc's
// ingress qdisc, u32 filter and mirred action, which husk's VM handler
// joins the pod's veth to its tap with.
var criModules = []string{"llc", "stp", "bridge", "veth", "sch_ingress", "cls_u32", "act_mirred"}

// CRIConfig is what a containerd run needs for its CRI plugin.
type CRIConfig struct {
	Crictl     string // static crictl (.tools/bin/crictl)
	CNIBinDir  string // Debian's CNI plugins (bridge, host-local, loopback)
	PauseImage string // the sandbox image's OCI tarball, named devenv.PauseRef
	// Runc and RuncShim, when set, are runc and containerd-shim-runc-v2:
	// the outer guest then has the CRI handler "runc" too.
	Runc, RuncShim string
	// Handlers are more of husk's CRI handlers, by name: each runs husk
	// with the configuration given, /etc/husk/cri-<name>.toml.
	Handlers map[string]string
}

// criPlugins are the CRI's CNI plugins the outer guest gets.
var criPlugins = []string{"bridge", "host-local", "loopback"}

// FindCRI finds crictl in <repo>/.tools/bin and the CNI plugins, and
// builds the pause image into dir (devenv.BuildPause, which needs gcc and
// libc6-dev). With runc, the runc handler's binaries from .tools/bin are
// required too.
func FindCRI(repo, dir string, runc bool) (*CRIConfig, error) {
	bin := filepath.Join(repo, ".tools", "bin")
	c := &CRIConfig{Crictl: filepath.Join(bin, "crictl"), CNIBinDir: devenv.CNIBinDir}
	need := []string{c.Crictl}
	if runc {
		c.Runc, c.RuncShim = filepath.Join(bin, "runc"), filepath.Join(bin, "containerd-shim-runc-v2")
		need = append(need, c.Runc, c.RuncShim)
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %s: run make tools", ErrMissing, p)
		}
	}
	for _, p := range criPlugins {
		if _, err := os.Stat(filepath.Join(c.CNIBinDir, p)); err != nil {
			return nil, fmt.Errorf("%w: CNI plugin %s: apt-get install containernetworking-plugins", ErrMissing, p)
		}
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return nil, fmt.Errorf("%w: no %s to build the pause image: apt-get install gcc libc6-dev", ErrMissing, cc)
	}
	pause := filepath.Join(dir, "pause")
	if err := devenv.BuildPause(pause); err != nil {
		return nil, err
	}
	c.PauseImage = filepath.Join(dir, "pause.tar")
	if err := devenv.PauseImage(c.PauseImage, devenv.PauseRef, pause); err != nil {
		return nil, err
	}
	return c, nil
}

// addCRI adds c's binaries, images and configuration to the outer initrd.
func addCRI(a *cpio.Archive, c *CRIConfig) error {
	if c.Crictl == "" || c.PauseImage == "" || c.CNIBinDir == "" {
		return fmt.Errorf("nested: CRIConfig needs Crictl, CNIBinDir and PauseImage")
	}
	bins := []struct{ src, dst string }{{c.Crictl, "bin/crictl"}}
	for _, p := range criPlugins {
		bins = append(bins, struct{ src, dst string }{filepath.Join(c.CNIBinDir, p), "usr/lib/cni/" + p})
	}
	if c.Runc != "" {
		bins = append(bins, struct{ src, dst string }{c.Runc, "bin/runc"}, struct{ src, dst string }{c.RuncShim, "bin/containerd-shim-runc-v2"})
	}
	for _, b := range bins {
		if err := addExecutable(a, b.src, b.dst); err != nil {
			return err
		}
	}
	if err := addFile(a, c.PauseImage, "images/pause.tar", 0o644); err != nil {
		return err
	}
	a.File("etc/cni/net.d/10-husk.conflist", 0o644, []byte(criConfList))
	a.File("etc/crictl.yaml", 0o644, []byte(crictlYAML))
	a.File("etc/husk/cri-vm.toml", 0o644, []byte(CRIVMHuskConfig))
	for name, conf := range c.Handlers {
		a.File("etc/husk/cri-"+name+".toml", 0o644, []byte(conf))
	}
	// The CRI copies the node's resolv.conf and hosts into each pod.
	a.File("etc/resolv.conf", 0o644, []byte("nameserver 127.0.0.1\n"))
	a.File("etc/hosts", 0o644, []byte("127.0.0.1 localhost husk-nested\n"))
	for _, d := range []string{"var/run/netns", "var/lib/cni", "var/log/pods"} {
		a.Dir(d)
	}
	return nil
}

// CRIVMHuskConfig is /etc/husk/cri-vm.toml, CRIVMHandler's configuration:
// DefaultHuskConfig with the VM handler as the default, on husk's VMM.
var CRIVMHuskConfig = strings.Replace(DefaultHuskConfig, `default_handler = "linux"`, `default_handler = "virt"`, 1) +
	"hypervisor = \"builtin\"\n"

// criConfList is the outer guest's CNI network: the bridge plugin, a
// gateway on the bridge, host-local addresses, no masquerading (the
// outer guest has no iptables; pods are reached from it, not the world).
const criConfList = `{
  "cniVersion": "1.0.0",
  "name": "husk-nested",
  "plugins": [{
    "type": "bridge",
    "bridge": "` + CRIBridge + `",
    "isGateway": true,
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "` + CRISubnet + `", "gateway": "` + criPrefix + `1"}]]
    }
  }]
}
`

// crictlYAML is /etc/crictl.yaml: containerd's socket; a generous timeout,
// as a VM pod's RunPodSandbox waits for its VM's boot (nested, under TCG).
const crictlYAML = `runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 360
debug: false
pull-image-on-create: false
`

// criTOML is the CRI plugins' part of containerd's configuration in the
// outer guest (version 3 keys, as test/devenv's criTOML): CRIVMHandler,
// c's Handlers, and runc's handler with c.Runc.
func criTOML(c *CRIConfig) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("\n[plugins.'io.containerd.cri.v1.images']\n")
	w("  snapshotter = 'overlayfs'\n")
	w("  [plugins.'io.containerd.cri.v1.images'.pinned_images]\n")
	w("    sandbox = '%s'\n", devenv.PauseRef)
	w("\n[plugins.'io.containerd.cri.v1.runtime']\n")
	w("  enable_selinux = false\n")
	w("  disable_apparmor = true\n")
	w("  [plugins.'io.containerd.cri.v1.runtime'.cni]\n")
	w("    bin_dirs = ['/usr/lib/cni']\n")
	w("    conf_dir = '/etc/cni/net.d'\n")
	w("    max_conf_num = 1\n")
	w("  [plugins.'io.containerd.cri.v1.runtime'.containerd]\n")
	w("    default_runtime_name = '%s'\n", CRIVMHandler)
	w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s']\n", CRIVMHandler)
	w("      runtime_type = 'io.containerd.husk.v2'\n")
	w("      sandboxer = 'podsandbox'\n")
	w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s'.options]\n", CRIVMHandler)
	w("        ConfigPath = '/etc/husk/cri-vm.toml'\n")
	for _, name := range slices.Sorted(maps.Keys(c.Handlers)) {
		w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s']\n", name)
		w("      runtime_type = 'io.containerd.husk.v2'\n")
		w("      sandboxer = 'podsandbox'\n")
		w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s'.options]\n", name)
		w("        ConfigPath = '/etc/husk/cri-%s.toml'\n", name)
	}
	if c.Runc != "" {
		w("    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n")
		w("      runtime_type = 'io.containerd.runc.v2'\n")
		w("      sandboxer = 'podsandbox'\n")
		w("      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n")
		w("        SystemdCgroup = false\n")
	}
	w("\n[plugins.'io.containerd.grpc.v1.cri']\n")
	w("  disable_tcp_service = true\n")
	w("  stream_server_address = '127.0.0.1'\n")
	w("  stream_server_port = '0'\n")
	return b.String()
}

// criPrepare is stage 2's part for the CRI, after containerd answers:
// the images into the CRI's namespace, then a wait for the CRI's
// RuntimeReady and NetworkReady (the conflist loaded).
const criPrepare = `
for i in busybox pause; do
  ctr -n ` + devenv.CRINamespace + ` images import --platform linux/amd64 /images/$i.tar > /tmp/import-cri.log 2>&1 || { cat /tmp/import-cri.log; verdict_fail "ctr -n ` + devenv.CRINamespace + ` images import $i"; }
done
i=0
until [ "$(crictl info -o go-template --template '{{range .status.conditions}}{{if or (eq .type "RuntimeReady") (eq .type "NetworkReady")}}{{.type}}={{.status}} {{end}}{{end}}' 2>/dev/null)" = "RuntimeReady=true NetworkReady=true " ]; do
  i=$((i+1)); [ $i -lt 300 ] || verdict_fail "the CRI is not ready after 60 s: $(crictl info 2>&1 | head -c 2000)"
  usleep 200000
done
echo "${M}CRI ready, uptime $(up)"
`

// criLib is added to the scenario's library with the CRI (see the comment
// at the top).
const criLib = `
cri_netns() { crictl inspectp -o go-template --template '{{range .info.runtimeSpec.linux.namespaces}}{{if eq .type "network"}}{{.path}}{{end}}{{end}}' "$1"; }
cri_state() { crictl inspect -o go-template --template '{{.status.state}}' "$1" 2>/dev/null; }
cri_wait_running() {
  i=0
  until [ "$(cri_state $1)" = CONTAINER_RUNNING ]; do
    i=$((i+1)); [ $i -lt 600 ] || { fail "container $1 not running after 60s: $(cri_state $1)"; return 1; }
    usleep 100000
  done
}
cri_check_clean() {
  p=$(crictl pods -q); [ -z "$p" ] || fail "CRI pods left: $p"
  c=$(crictl ps -a -q); [ -z "$c" ] || fail "CRI containers left: $c"
  t=$(ctr -n ` + devenv.CRINamespace + ` task ls -q); [ -z "$t" ] || fail "tasks left in ` + devenv.CRINamespace + `: $t"
  k=$(ctr -n ` + devenv.CRINamespace + ` containers ls -q); [ -z "$k" ] || fail "containers left in ` + devenv.CRINamespace + `: $k"
  i=0
  while [ -n "$(husk_procs)" ] && [ $i -lt 50 ]; do usleep 200000; i=$((i+1)); done
  h=$(husk_procs); [ -z "$h" ] || fail "husk processes left: $h"
  m=$(grep -e io.containerd.runtime.v2.task -e /run/husk/ -e /var/cache/husk -e /run/netns -e /run/containerd/io.containerd.grpc.v1.cri /proc/mounts); [ -z "$m" ] || fail "mounts left: $m"
  s=$(find /run/husk -mindepth 2 2>/dev/null); [ -z "$s" ] || fail "husk state left: $s"
  n=$(ls /var/run/netns 2>/dev/null); [ -z "$n" ] || fail "network namespaces left: $n"
  v=$(ls /sys/class/net | grep -e '^veth' -e '^tap'); [ -z "$v" ] || fail "veths or taps left: $v"
  d=$(find /var/cache/husk/rootfs -mindepth 1 2>/dev/null | grep -Ev '/[0-9a-f]{64}[.]erofs$'); [ -z "$d" ] || fail "disk images left: $d"
  g=$(find /sys/fs/cgroup/` + devenv.CRINamespace + ` -mindepth 1 -type d 2>/dev/null); [ -z "$g" ] || fail "pod cgroups left: $g"
  [ -n "$p$c$t$k$h$m$s$n$v$d$g" ] || echo "` + ctrMarker + `ok: CRI: nothing left (pods, containers, tasks, shims, VMM processes, mounts, state, network namespaces, veths, taps, disk images, cgroups)"
}
`

// criContainerdPlugins are the plugins containerdTOML disables that the
// CRI needs.
var criContainerdPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
}

// criContainerdTOML is containerdTOML with the CRI's plugins enabled and
// configured (criTOML).
func criContainerdTOML(c *CRIConfig) string {
	s := containerdTOML
	for _, p := range criContainerdPlugins {
		s = strings.Replace(s, "  '"+p+"',\n", "", 1)
	}
	return s + criTOML(c)
}
