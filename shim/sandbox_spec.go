package shim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

// Under containerd's "shim" sandboxer the CRI hands a pod to the shim as
// its PodSandboxConfig, not as a pause container's OCI spec. husk reads
// every pod from an OCI spec (its handler, sizing, hostname, cgroup,
// network namespace, hook events), so the sandbox service turns the
// config into the spec containerd's podsandbox would have given the pause
// container, and the rest of the shim cannot tell the two apart.

// CRI annotation keys a pod's sandbox spec carries (containerd's).
const (
	annContainerType   = "io.kubernetes.cri.container-type"
	annSandboxID       = "io.kubernetes.cri.sandbox-id"
	annSandboxName     = "io.kubernetes.cri.sandbox-name"
	annSandboxNS       = "io.kubernetes.cri.sandbox-namespace"
	annSandboxUID      = "io.kubernetes.cri.sandbox-uid"
	annSandboxLogDir   = "io.kubernetes.cri.sandbox-log-directory"
	annSandboxCPUPer   = "io.kubernetes.cri.sandbox-cpu-period"
	annSandboxCPUQuota = "io.kubernetes.cri.sandbox-cpu-quota"
	annSandboxCPUShare = "io.kubernetes.cri.sandbox-cpu-shares"
	annSandboxMemory   = "io.kubernetes.cri.sandbox-memory"
)

// maxPodConfig bounds a PodSandboxConfig's encoding: kubelet's are a few
// kB (annotations and labels are bounded by the API server at 256 kB).
const maxPodConfig = 1 << 20

// podConfig decodes the CRI's PodSandboxConfig from CreateSandbox's options.
func podConfig(opts *anypb.Any) (*podSandboxConfig, error) {
	if opts == nil || len(opts.GetValue()) == 0 {
		return nil, fmt.Errorf("no PodSandboxConfig in the sandbox's options (husk's sandbox service serves the CRI): %w", errdefs.ErrInvalidArgument)
	}
	if u := opts.GetTypeUrl(); u != "runtime.v1.PodSandboxConfig" && !strings.HasSuffix(u, "/runtime.v1.PodSandboxConfig") {
		return nil, fmt.Errorf("sandbox options are a %q, want the CRI's runtime.v1.PodSandboxConfig: %w", u, errdefs.ErrInvalidArgument)
	}
	if len(opts.GetValue()) > maxPodConfig {
		return nil, fmt.Errorf("PodSandboxConfig of %d bytes, over %d: %w", len(opts.GetValue()), maxPodConfig, errdefs.ErrInvalidArgument)
	}
	c, err := decodePodSandboxConfig(opts.GetValue())
	if err != nil {
		return nil, fmt.Errorf("malformed PodSandboxConfig: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// sandboxSpec is the OCI spec of pod id's sandbox, as containerd's
// podsandbox would have made the pause container's: the CRI's annotations
// (the pod's own annotations all pass: there is no pause image whose
// runtime filters them), the sizing annotations from the pod's resources,
// the hostname, the cgroup under the pod's parent, the network namespace
// the CRI made (none for a hostNetwork pod), and new IPC, UTS and PID
// namespaces unless the pod shares the node's.
func sandboxSpec(id string, c *podSandboxConfig, netns string) *specs.Spec {
	ann := make(map[string]string, len(c.Annotations)+10)
	for k, v := range c.Annotations {
		ann[k] = v
	}
	ann[annContainerType] = "sandbox"
	ann[annSandboxID] = id
	ann[annSandboxName] = c.Name
	ann[annSandboxNS] = c.Namespace
	ann[annSandboxUID] = c.UID
	ann[annSandboxLogDir] = c.LogDirectory
	if res := c.Linux.Resources; res != nil {
		ann[annSandboxCPUPer] = strconv.FormatInt(res.CPUPeriod, 10)
		ann[annSandboxCPUQuota] = strconv.FormatInt(res.CPUQuota, 10)
		ann[annSandboxCPUShare] = strconv.FormatInt(res.CPUShares, 10)
		ann[annSandboxMemory] = strconv.FormatInt(res.Memory, 10)
	}

	nsOpts := c.Linux.Namespaces
	namespaces := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if netns != "" {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	}
	if nsOpts.IPC != nsNode {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if nsOpts.Network != nsNode {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if nsOpts.PID != nsNode {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	var cgroupsPath string
	if parent := c.Linux.CgroupParent; parent != "" {
		if strings.HasSuffix(parent, ".slice") {
			cgroupsPath = parent + ":cri-containerd:" + id // systemd's slice:prefix:name
		} else {
			cgroupsPath = filepath.Join(parent, id)
		}
	}
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: c.Hostname,
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Args: []string{"/pause"},
			Cwd:  "/",
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		Annotations: ann,
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces:  namespaces,
			Sysctl:      c.Linux.Sysctls,
		},
	}
}

// The files a pod's containers get at /etc/hosts, /etc/resolv.conf and
// /etc/hostname. Under podsandbox containerd writes them beside its record
// of the pod and bind-mounts them into each container's spec; under the
// shim sandboxer it leaves them to the sandbox, so the sandbox service
// writes them into the sandbox's bundle and adds the mounts to each of
// the pod's containers that has none of its own (podFileMounts).
var podFiles = []struct{ name, dest string }{
	{"hosts", "/etc/hosts"},
	{"resolv.conf", "/etc/resolv.conf"},
	{"hostname", "/etc/hostname"},
}

// maxHostFile bounds what is copied of the host's /etc/hosts and
// /etc/resolv.conf.
const maxHostFile = 1 << 20

// writePodFiles writes the pod's hosts, resolv.conf and hostname into dir:
// the host's /etc/hosts (as containerd does), a resolv.conf from the pod's
// DNS config or else the host's, and the pod's hostname (the node's name
// for a hostNetwork pod with none).
func writePodFiles(dir string, c *podSandboxConfig, etc string) error {
	hosts, err := readBounded(filepath.Join(etc, "hosts"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	resolv, err := resolvConf(c.DNS, etc)
	if err != nil {
		return err
	}
	hostname := c.Hostname
	if hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			return err
		}
	}
	for name, b := range map[string][]byte{"hosts": hosts, "resolv.conf": resolv, "hostname": []byte(hostname + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing the pod's %s: %w", name, err)
		}
	}
	return nil
}

// resolvConf is the pod's resolv.conf: its DNS config's servers, searches
// and options, or the host's file when it has none.
func resolvConf(dns dnsConfig, etc string) ([]byte, error) {
	if len(dns.Servers)+len(dns.Searches)+len(dns.Options) == 0 {
		b, err := readBounded(filepath.Join(etc, "resolv.conf"))
		if os.IsNotExist(err) {
			return nil, nil
		}
		return b, err
	}
	var b strings.Builder
	for _, s := range dns.Servers {
		if err := resolvField("server", s); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	for _, f := range []struct {
		key  string
		vals []string
	}{{"search", dns.Searches}, {"options", dns.Options}} {
		if len(f.vals) == 0 {
			continue
		}
		for _, v := range f.vals {
			if err := resolvField(f.key, v); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(&b, "%s %s\n", f.key, strings.Join(f.vals, " "))
	}
	return []byte(b.String()), nil
}

// resolvField refuses a DNS value that would break the file's lines.
func resolvField(key, v string) error {
	if v == "" || strings.ContainsAny(v, " \t\r\n#;") {
		return fmt.Errorf("DNS %s %q of the pod: not one word: %w", key, v, errdefs.ErrInvalidArgument)
	}
	return nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHostFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxHostFile {
		return nil, fmt.Errorf("%s is over %d bytes", path, maxHostFile)
	}
	return b, nil
}

// podFileMounts adds to spec, a container of a pod whose files are in dir,
// a bind mount of each pod file the container has no mount of its own at.
func podFileMounts(spec *specs.Spec, dir string) {
	has := make(map[string]bool, len(spec.Mounts))
	for _, m := range spec.Mounts {
		has[filepath.Clean(m.Destination)] = true
	}
	ro := spec.Root != nil && spec.Root.Readonly
	for _, f := range podFiles {
		if has[f.dest] {
			continue
		}
		opts := []string{"rbind", "rprivate", "rw"}
		if ro {
			opts[2] = "ro"
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: f.dest, Type: "bind", Source: filepath.Join(dir, f.name), Options: opts})
	}
}
